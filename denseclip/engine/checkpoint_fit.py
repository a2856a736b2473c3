"""Does a checkpoint hold this model's weights? Stop testing when it does not.

mmengine loads a checkpoint non-strictly: a file that lacks some of the
model's tensors (another model's, a ResNet-50 student's on a ResNet-101
config) prints a missing-keys warning and the test goes on with those
tensors at their initial (random) values, reporting a metric that looks like
a result. :class:`CheckpointFitHook` compares the checkpoint the runner has
just loaded (no second read), after the model's own key conversion, with the
model's ``state_dict()`` before the weights are copied, and stops when any
tensor would stay at its initial value (missing from the file, or there with
another shape), except the parts built fresh by design
(:data:`~denseclip.engine.fresh_by_design.FRESH_BY_DESIGN`). The message
names the modules left out with their tensor counts, numbered blocks
collapsed (``backbone.layer3.6-22: 306 tensors``), and, for a ResNet of
another depth, the config the file fits. It costs a look-up per tensor
name; nothing is copied.
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

from .fresh_by_design import fresh_by_design
from .resnet_depth_hint import resnet_depth_hints

__all__ = ['CheckpointFit', 'CheckpointFitError', 'CheckpointFitHook',
           'checkpoint_fit', 'module_groups']

# how many keys of each kind, and how many module groups, a message shows
_SHOWN = 5
_GROUPS_SHOWN = 12


class CheckpointFitError(RuntimeError):
    """A checkpoint that leaves some of the model's weights as initialised."""


def _group_of(key: str) -> str:
    """The module a missing key is reported under: up to its first numbered
    part (``backbone.layer3.6``), else its module, else the key itself."""
    parts = key.split('.')
    for i, part in enumerate(parts):
        if part.isdigit():
            return '.'.join(parts[:i + 1])
    return '.'.join(parts[:-1]) or key


def _runs(numbers: List[int]) -> str:
    """``[6, 7, 8, 10]`` -> ``'6-8,10'``."""
    numbers = sorted(set(numbers))
    runs, start = [], numbers[0]
    for prev, cur in zip(numbers, numbers[1:] + [None]):
        if cur != prev + 1:
            runs.append(str(start) if start == prev else f'{start}-{prev}')
            start = cur
    return ','.join(runs)


def module_groups(keys: List[str]) -> List[Tuple[str, int]]:
    """``keys`` counted by module (:func:`_group_of`), the numbered modules
    of one parent collapsed into runs, in the order of first appearance:
    ``[('backbone.layer3.6-22', 306)]``."""
    counts: Dict[str, int] = {}
    for key in keys:
        group = _group_of(key)
        counts[group] = counts.get(group, 0) + 1
    merged: Dict[str, Tuple[List[int], int]] = {}
    for group, count in counts.items():
        head, dot, last = group.rpartition('.')
        if last.isdigit():
            numbers, total = merged.get(head + dot + '#', ([], 0))
            merged[head + dot + '#'] = (numbers + [int(last)], total + count)
        else:
            merged[group] = ([], count)
    return [(name[:-1] + _runs(numbers) if numbers else name, total)
            for name, (numbers, total) in merged.items()]


@dataclass
class CheckpointFit:
    """How a checkpoint's state dict covers a model's ``state_dict()``."""
    total: int  # the model's tensors
    found: int  # of them, in the checkpoint with the model's shape
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    # key, shape in the checkpoint, shape in the model
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    # missing or mismatched keys that are built fresh by design
    fresh: List[str] = field(default_factory=list)
    # sentences on a backbone of another depth (resnet_depth_hint)
    hints: List[str] = field(default_factory=list)

    @property
    def left_at_init(self) -> List[str]:
        """Model tensors the file leaves at their initial values (missing,
        or of another shape), except those built fresh by design."""
        fresh = set(self.fresh)
        return [k for k in self.missing + [m[0] for m in self.mismatched]
                if k not in fresh]

    @property
    def fits(self) -> bool:
        """No tensor outside the fresh-by-design parts is left as
        initialised, and no backbone is of another depth (a ResNet-101 file
        on a ResNet-50 model leaves nothing out but drops 17 blocks)."""
        return not self.left_at_init and not self.hints

    def groups(self) -> List[Tuple[str, int]]:
        """The modules with a tensor left at its initial value, each with
        the number of its tensors the file does not supply (buffers such as
        ``num_batches_tracked`` included)."""
        flagged = {_group_of(k) for k in self.left_at_init}
        keys = [k for k in self.missing + [m[0] for m in self.mismatched]
                if _group_of(k) in flagged]
        return module_groups(keys)

    def describe(self, filename: str, config: Optional[str] = None) -> str:
        """What is wrong: the modules left as initialised, a few keys of each
        kind, and which config a backbone of another depth fits."""

        def some(keys: List[str]) -> str:
            more = len(keys) - _SHOWN
            return ', '.join(keys[:_SHOWN]) + (f' (and {more} more)'
                                               if more > 0 else '')

        groups = self.groups()
        shown = '; '.join(f'{name}: {count} tensor{"s" * (count != 1)}'
                          for name, count in groups[:_GROUPS_SHOWN])
        if len(groups) > _GROUPS_SHOWN:
            shown += f' (and {len(groups) - _GROUPS_SHOWN} more modules)'
        model = f'the model of {config}' if config else 'the model'
        parts = [f'checkpoint {filename} supplies {self.found} of the '
                 f'{self.total} tensors (parameters and buffers) of {model} '
                 'with their names and shapes']
        if groups:
            parts.append(f'Left at their initial values: {shown}')
        parts.extend(self.hints)
        if self.mismatched:
            shapes = [f'{key} (file {list(theirs)}, model {list(ours)})'
                      for key, theirs, ours in self.mismatched]
            parts.append(f'Keys of another shape ({len(shapes)}): '
                         f'{some(shapes)}')
        if self.unexpected:
            parts.append(f'Unexpected keys ({len(self.unexpected)}): '
                         f'{some(self.unexpected)}')
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


def checkpoint_fit(model: nn.Module, checkpoint: Dict,
                   config: Optional[str] = None) -> CheckpointFit:
    """Compare a loaded checkpoint with ``model``'s ``state_dict()`` (on the
    keys the model loads: ``model.convert_state_dict`` where it has one).
    ``config``: the model's config file, for the depth hint's sibling."""
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
    if fit.missing or fit.mismatched:
        fresh = fresh_by_design(model)
        fit.fresh = [k for k in fit.missing + [m[0] for m in fit.mismatched]
                     if k in fresh]
    if fit.missing or fit.unexpected:
        fit.hints = resnet_depth_hints(model, theirs, config)
    return fit


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Stop when the checkpoint the runner loads leaves any of the model's
    tensors at its initial value, outside the parts built fresh by design
    (:class:`CheckpointFit`); ``allow_partial`` makes it a warning.
    ``tools/test.py`` adds it (``--allow-partial-checkpoint``).

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
        config = getattr(runner.cfg, 'filename', None)
        fit = checkpoint_fit(runner.model, checkpoint, config)
        name = self.filename or runner.cfg.get('load_from') or 'checkpoint'
        if fit.fits:
            print_log(f'{name} supplies {fit.found} of the model\'s '
                      f'{fit.total} tensors', logger='current')
            return
        message = fit.describe(name, config)
        if not self.allow_partial:
            raise CheckpointFitError(
                f'{message}. Is it a checkpoint of this config\'s model? To '
                'test with the weights that fit and the rest as initialised, '
                'pass --allow-partial-checkpoint (CheckpointFitHook('
                'allow_partial=True))')
        print_log(f'{message}; testing anyway (--allow-partial-checkpoint)',
                  logger='current', level=logging.WARNING)
