"""Positional embeddings at another resolution than they were trained for."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

POS_INTERPOLATIONS = ('bilinear', 'bicubic')


def resize_pos_embed(pos_embed: Tensor, grid: Tuple[int, int],
                     mode: str = 'bilinear') -> Tensor:
    """Resize ``[1 + h*w, C]`` positional embeddings to ``[1 + H*W, C]``.

    The spatial part is interpolated on its square grid; the first (class /
    global) position is kept. ``'bilinear'`` to the grid's size (DenseCLIP);
    ``'bicubic'`` as SCLIP, ClearCLIP and NACLIP do it (DINO's recipe: scale
    factors ``(H + 0.1) / side`` and ``(W + 0.1) / side``).
    """
    if mode not in POS_INTERPOLATIONS:
        raise ValueError(f'positional embedding interpolation must be one of '
                         f'{POS_INTERPOLATIONS}, got {mode!r}')
    cls_pos, spatial = pos_embed[:1], pos_embed[1:]
    side = int(math.isqrt(spatial.shape[0]))
    if side * side != spatial.shape[0]:
        raise ValueError(
            f'positional embedding of shape {tuple(pos_embed.shape)} has no '
            f'square spatial grid ({spatial.shape[0]} positions)')
    if (side, side) == tuple(grid):
        return pos_embed
    channels = spatial.shape[1]
    spatial = spatial.reshape(1, side, side, channels).permute(0, 3, 1, 2)
    if mode == 'bilinear':
        spatial = F.interpolate(
            spatial, size=tuple(grid), mode='bilinear', align_corners=False)
    else:
        spatial = F.interpolate(
            spatial, mode='bicubic', align_corners=False,
            scale_factor=((grid[0] + 0.1) / side, (grid[1] + 0.1) / side),
            recompute_scale_factor=False)
    spatial = spatial.reshape(channels, -1).permute(1, 0)
    return torch.cat([cls_pos, spatial], dim=0)
