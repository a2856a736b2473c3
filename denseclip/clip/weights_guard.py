"""Refusing to run on random weights (MaskCLIP has no training to fix them).

The reference MaskCLIP's most reported failure is a backbone left random
because the converted checkpoint was not passed: the model runs and paints
meaningless masks. Here a module that must run on CLIP weights checks, before
its first forward, that it got them, from one of:

* a CLIP file read by ``init_weights`` (the runner's train loop calls it);
* a state dict holding every one of its tensors, loaded into it or into a
  parent (``load_from=`` / ``tools/test.py CONFIG CHECKPOINT``,
  ``load_checkpoint``, ``model.load_state_dict``);
* otherwise, if a CLIP file is configured, that file is read right then:
  mmengine's test loop never calls ``init_weights``, and MaskCLIP has no
  trained checkpoint to give it.

With none of these the forward raises :class:`RandomWeightsError` naming the
option to set. The check lives in the forward (a pre-hook) rather than in
``init_weights`` because ``init_weights`` is not called on the test path and a
full checkpoint given with ``load_from`` is a legitimate source.
"""
from typing import Callable, Dict, Iterable, Optional

from mmengine.logging import print_log
from torch import Size, nn

from .checkpoint import CLIPCheckpointError


class RandomWeightsError(CLIPCheckpointError):
    """A module that must run on CLIP weights would run on random ones."""


def configured_checkpoint(pretrained: Optional[str],
                          init_cfg: Optional[dict]) -> Optional[str]:
    """The file a module reads on ``init_weights``: its ``pretrained``, else
    the checkpoint of an ``init_cfg=dict(type='Pretrained', ...)``."""
    if pretrained is not None:
        return pretrained
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        return init_cfg['checkpoint']
    return None


def on_state_dict_load(module: nn.Module, keys: Callable[[], Iterable[str]],
                       callback: Callable[[], None]) -> None:
    """Call ``callback`` when a state dict loaded into ``module`` (or a parent)
    holds every key of ``keys()`` (relative to ``module``) with the module's
    shape. A partial or mismatching state dict does not count."""

    def hook(mod, state_dict, prefix, *args) -> None:
        own: Dict[str, Size] = {k: v.shape for k, v in mod.state_dict().items()}
        for key in keys():
            value = state_dict.get(prefix + key)
            if value is None or value.shape != own[key]:
                return
        callback()

    module.register_load_state_dict_pre_hook(hook)


def _tower_keys(tower: nn.Module) -> Iterable[str]:
    is_clip_key = getattr(tower, 'is_clip_key', lambda key: True)
    return [
        k for k in tower.state_dict()
        if is_clip_key(k) and not k.endswith('num_batches_tracked')
    ]


def require_clip_weights(tower: nn.Module, hint: str) -> None:
    """Make a CLIP tower (:class:`~denseclip.clip.tower.CLIPTower`) refuse
    to run on random weights; ``hint`` says which option gives them.

    The tower counts as having weights once ``init_weights`` loaded its CLIP
    file (``tower.load_report`` is set) or a state dict with all its CLIP keys
    was loaded. Before that, the first forward loads ``tower.clip_checkpoint``
    if there is one, and raises :class:`RandomWeightsError` if not.
    """
    tower.weights_from_state_dict = False

    def mark() -> None:
        tower.weights_from_state_dict = True

    on_state_dict_load(tower, lambda: _tower_keys(tower), mark)

    def check(module: nn.Module, args) -> None:
        if module.load_report is not None or module.weights_from_state_dict:
            return
        name = type(module).__name__
        checkpoint = module.clip_checkpoint
        if checkpoint is None:
            raise RandomWeightsError(
                f'{name} has no CLIP weights and would run on random ones '
                f'(no CLIP file was read and no checkpoint was loaded). '
                f'{hint}')
        print_log(
            f'{name}: reading its CLIP weights from {checkpoint} before the '
            f'first forward (init_weights has not run; mmengine runs it only '
            f'before training)', logger='current')
        module.init_weights()

    tower.register_forward_pre_hook(check)
