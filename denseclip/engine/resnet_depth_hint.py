"""Which ResNet depth a checkpoint's backbone has, when it is not the model's.

A file of a ResNet-50 student tested with a ResNet-101 config lacks blocks
6-22 of stage 3 (and the other way round has too many): the blocks per
stage in the file name the depth, and so the config that fits it. The
MaskCLIP reference's ViT-B/16 MaskCLIP+ configs build a ResNet-50 student
under a name that says R-101, so its released files may be either
(docs/maskclip_plus.md).
"""
import os.path as osp
import re
from typing import List, Optional, Tuple

from mmseg.models.backbones import ResNet
from torch import nn

__all__ = ['resnet_depth_hints']


def _blocks_per_stage(keys, prefix: str, stages: int) -> Tuple[int, ...]:
    counts = []
    for stage in range(1, stages + 1):
        head = f'{prefix}layer{stage}.'
        blocks = {key[len(head):].split('.', 1)[0] for key in keys
                  if key.startswith(head)}
        counts.append(len({b for b in blocks if b.isdigit()}))
    return tuple(counts)


def _depth_of(counts: Tuple[int, ...], bottleneck: bool) -> Optional[int]:
    for depth, (block, arch) in ResNet.arch_settings.items():
        if (block.__name__ == 'Bottleneck') == bottleneck and \
                tuple(arch[:len(counts)]) == counts:
            return depth
    return None


def sibling_config(config: Optional[str], depth: int,
                   other: int) -> Optional[str]:
    """``config`` with its student's ``_r{depth}`` (the last one in the
    name) written ``_r{other}``, if that file exists."""
    if not config:
        return None
    name = osp.basename(config)
    found = list(re.finditer(rf'_r{depth}(?=[_.-])', name))
    if not found:
        return None
    at = found[-1]
    path = osp.join(osp.dirname(config),
                    name[:at.start()] + f'_r{other}' + name[at.end():])
    return path if osp.isfile(path) else None


def resnet_depth_hints(model: nn.Module, keys, config: Optional[str]
                       ) -> List[str]:
    """One sentence per mmseg ResNet in ``model`` whose blocks per stage in
    the state-dict ``keys`` are another depth's: which, and the config (a
    sibling of ``config`` named for that depth) or option that fits."""
    keys = list(keys)
    hints = []
    for name, module in model.named_modules():
        if not isinstance(module, ResNet):
            continue
        prefix = name + '.' if name else ''
        stages = len(module.res_layers)
        ours = tuple(len(getattr(module, layer)) for layer in
                     module.res_layers)
        theirs = _blocks_per_stage(keys, prefix, stages)
        if theirs == ours or not any(theirs):
            continue
        bottleneck = any(k.startswith(f'{prefix}layer1.0.conv3.')
                         for k in keys)
        depth = _depth_of(theirs, bottleneck)
        if depth is None:
            continue
        fits = sibling_config(config, module.depth, depth)
        where = (f'it fits {fits}' if fits else
                 f'test it with a config whose model.{name}.depth is {depth}'
                 f' (--cfg-options model.{name}.depth={depth})')
        hints.append(
            f"The file's {name} is a ResNet-{depth} (blocks per stage "
            f"{', '.join(map(str, theirs))}; this config's ResNet-"
            f"{module.depth}: {', '.join(map(str, ours))}): {where}")
    return hints
