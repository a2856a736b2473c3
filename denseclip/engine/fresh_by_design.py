"""The model tensors that a checkpoint need not hold: the one list.

:class:`~denseclip.engine.checkpoint_fit.CheckpointFitHook` stops a test when
a checkpoint leaves any model tensor at its initial value, except the ones
named here, each with why a file may lack it. (MaskCLIP+'s teacher needs no
entry: it is kept outside the module tree, so it is not in the model's
``state_dict()`` at all; ``init_weights`` rebuilds it from its CLIP file.)
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['FRESH_BY_DESIGN', 'FreshByDesign', 'fresh_by_design']


@dataclass(frozen=True)
class FreshByDesign:
    """Tensors of the modules that ``owner`` accepts (with ``names``: only
    those local names; else every tensor of the module and its children)."""
    what: str
    why: str
    owner: Callable[[nn.Module], bool]
    names: Optional[Tuple[str, ...]] = None


def _class_named(name: str) -> Callable[[nn.Module], bool]:
    # by class name, not by import: the engine stays free of model imports
    # and the classes may move between packages
    return lambda module: any(cls.__name__ == name
                              for cls in type(module).__mro__)


FRESH_BY_DESIGN: Tuple[FreshByDesign, ...] = (
    FreshByDesign(
        'num_batches_tracked of each batch norm',
        "the count of training steps of a BN layer; read only when its "
        "momentum is None (never in this project's configs), and absent "
        "from some older files",
        lambda module: isinstance(module, _BatchNorm),
        ('num_batches_tracked', )),
    FreshByDesign(
        'MaskClipPlus.train_iter',
        "the training iteration counter (when self-training starts); "
        "testing never reads it, and a reference MaskCLIP+ file has none "
        "(its _iter_counter is dropped on loading)",
        _class_named('MaskClipPlus'), ('train_iter', )),
    FreshByDesign(
        'CLIP towers built with require_clip_weights (MaskCLIP and the '
        'training-free methods)',
        'they read their CLIP file before their first forward when a '
        'checkpoint does not hold all of their weights, or stop with '
        'RandomWeightsError (denseclip/models/weights_guard.py)',
        # set by weights_guard.require_clip_weights, on those towers only
        lambda module: hasattr(module, 'weights_from_state_dict')),
    FreshByDesign(
        "MaskClipHead's projections and text embeddings",
        'read from its CLIP file (the class names encoded at run time) or '
        'its projection / text-embedding files before the first forward '
        'when a checkpoint lacks them, or it stops with RandomWeightsError',
        _class_named('MaskClipHead')),
)


def fresh_by_design(model: nn.Module) -> Dict[str, FreshByDesign]:
    """``{state-dict key: its FRESH_BY_DESIGN entry}`` for ``model``."""
    fresh: Dict[str, FreshByDesign] = {}
    for prefix, module in model.named_modules():
        for entry in FRESH_BY_DESIGN:
            if not entry.owner(module):
                continue
            dot = prefix + '.' if prefix else ''
            if entry.names is None:
                keys = module.state_dict(prefix=dot).keys()
            else:
                own = module.state_dict(prefix=dot, keep_vars=True)
                keys = [dot + n for n in entry.names if dot + n in own]
            for key in keys:
                fresh.setdefault(key, entry)
    return fresh
