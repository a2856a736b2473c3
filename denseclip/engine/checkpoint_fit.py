"""Does a checkpoint hold this model's weights? Stop testing when it does not.

mmengine loads a checkpoint non-strictly: a file of another model prints a
missing-keys warning and the test goes on with random weights, reporting a
metric that looks like a result. :class:`CheckpointFitHook` compares the
checkpoint the runner has just loaded (no second read) with the model's
``state_dict()`` before the weights are copied, and stops when it supplies
*almost none* of them: fewer than half of the model's tensors (parameters
and buffers, by name) are in the file with the model's shape. It costs a
look-up per tensor name; nothing is copied.
"""
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn

__all__ = ['CheckpointFit', 'CheckpointFitError', 'CheckpointFitHook',
           'checkpoint_fit']

# how many keys of each kind a message shows
_SHOWN = 5


class CheckpointFitError(RuntimeError):
    """A checkpoint that supplies almost none of the model's weights."""


@dataclass
class CheckpointFit:
    """How a checkpoint's state dict covers a model's ``state_dict()``."""
    total: int  # the model's tensors
    found: int  # of them, in the checkpoint with the model's shape
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    # key, shape in the checkpoint, shape in the model
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """At least half of the model's tensors are supplied."""
        return 2 * self.found >= self.total

    def describe(self, filename: str) -> str:
        """What is wrong, with a few keys of each kind."""

        def some(keys: List[str]) -> str:
            more = len(keys) - _SHOWN
            return ', '.join(keys[:_SHOWN]) + (f' (and {more} more)'
                                               if more > 0 else '')

        parts = [f'checkpoint {filename} supplies {self.found} of the '
                 f"model's {self.total} tensors (parameters and buffers) "
                 'with their names and shapes; at least half are needed']
        if self.missing:
            parts.append(f'Missing keys ({len(self.missing)}): '
                         f'{some(self.missing)}')
        if self.unexpected:
            parts.append(f'Unexpected keys ({len(self.unexpected)}): '
                         f'{some(self.unexpected)}')
        if self.mismatched:
            shapes = [f'{key} (file {list(theirs)}, model {list(ours)})'
                      for key, theirs, ours in self.mismatched]
            parts.append(f'Keys of another shape ({len(shapes)}): '
                         f'{some(shapes)}')
        return '. '.join(parts)


def _unwrap(model: nn.Module) -> nn.Module:
    """The model mmengine loads into: DDP and ``SegTTAModel`` unwrapped."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def _state_dict_of(checkpoint: Dict) -> Dict:
    """The state dict as ``_load_checkpoint_to_model`` takes it (``state_dict``
    of mmengine and mmseg 0.x files, else the dict itself), ``module.``
    prefixes stripped (mmengine's default ``revise_keys``)."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else {}
    return {(k[len('module.'):] if k.startswith('module.') else k): v
            for k, v in state.items()}


def checkpoint_fit(model: nn.Module, checkpoint: Dict) -> CheckpointFit:
    """Compare a loaded checkpoint with ``model``'s ``state_dict()`` (on the
    keys the model loads: ``model.convert_state_dict`` where it has one)."""
    model = _unwrap(model)
    own = model.state_dict()
    theirs = _state_dict_of(checkpoint)
    if hasattr(model, 'convert_state_dict'):  # another layout it converts
        theirs = model.convert_state_dict(theirs)
    fit = CheckpointFit(total=len(own), found=0)
    for key, value in own.items():
        other = theirs.get(key)
        if not isinstance(other, torch.Tensor):
            fit.missing.append(key)
        elif other.shape != value.shape:
            fit.mismatched.append((key, tuple(other.shape),
                                   tuple(value.shape)))
        else:
            fit.found += 1
    fit.unexpected = [key for key in theirs if key not in own]
    return fit


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Stop when the checkpoint the runner loads supplies almost none of the
    model's weights (:class:`CheckpointFit`); ``allow_partial`` makes it a
    warning. ``tools/test.py`` adds it (``--allow-partial-checkpoint``).

    Args:
        filename: the checkpoint, for the message (default: ``load_from``).
        allow_partial: warn and go on instead of stopping.
    """

    priority = 'VERY_HIGH'

    def __init__(self, filename: Optional[str] = None,
                 allow_partial: bool = False) -> None:
        self.filename = filename
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        fit = checkpoint_fit(runner.model, checkpoint)
        name = self.filename or runner.cfg.get('load_from') or 'checkpoint'
        if fit.fits:
            print_log(f'{name} supplies {fit.found} of the model\'s '
                      f'{fit.total} tensors', logger='current')
            return
        message = fit.describe(name)
        if not self.allow_partial:
            raise CheckpointFitError(
                f'{message}. Is it a checkpoint of this config\'s model? To '
                'test with the weights that fit and the rest as initialised, '
                'pass --allow-partial-checkpoint (CheckpointFitHook('
                'allow_partial=True))')
        print_log(f'{message}; testing anyway (--allow-partial-checkpoint)',
                  logger='current', level=logging.WARNING)
