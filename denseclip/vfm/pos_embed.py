"""Resizing a VFM's learned position table to another patch grid.

The table is learned for a square grid (DINO: 224 px, DINOv2: 518 px) and
resized with bicubic interpolation for any other input size, as each
reference does it (the three give different numbers, up to 1e-2 apart):

* ``'dino'``: DINO's ``interpolate_pos_encoding`` (and DINOv2's without
  registers): ``scale_factor=((h + 0.1) / side, (w + 0.1) / side)``, no
  antialiasing. The 0.1 makes the output size come out as ``h x w`` despite
  rounding; the scale factor, not the output size, places the samples.
* ``'exact'``: transformers' ``ViTModel``: ``size=(h, w)``,
  ``align_corners=False``.
* ``'antialias'``: DINOv2 with registers (its hub models set
  ``interpolate_antialias=True, interpolate_offset=0``) and transformers'
  ``Dinov2WithRegistersModel``: ``size=(h, w)`` with ``antialias=True``,
  computed in float32.

All three keep the table when the grid is the training grid and the input
is square (the references' own shortcut; for ``'dino'`` a non-square input
of the training grid's size is resized, as DINO does).
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .files import (ANTIALIAS_INTERPOLATION, DINO_INTERPOLATION,
                    EXACT_INTERPOLATION, POS_INTERPOLATIONS)

DINO_OFFSET = 0.1


def resize_patch_table(table: Tensor, grid: Tuple[int, int],
                       mode: str) -> Tensor:
    """Resize ``table`` ``[1, D, side, side]`` to ``[1, D, h, w]``."""
    h, w = grid
    side = table.shape[-1]
    if mode == DINO_INTERPOLATION:
        out = F.interpolate(
            table, mode='bicubic',
            scale_factor=((h + DINO_OFFSET) / side, (w + DINO_OFFSET) / side))
        if tuple(out.shape[-2:]) != (h, w):
            raise RuntimeError(f'DINO interpolation gave a {tuple(out.shape[-2:])}'
                               f' grid for {(h, w)}')
        return out
    if mode == EXACT_INTERPOLATION:
        return F.interpolate(table, size=(h, w), mode='bicubic',
                             align_corners=False)
    if mode == ANTIALIAS_INTERPOLATION:
        return F.interpolate(table.float(), size=(h, w), mode='bicubic',
                             align_corners=False, antialias=True).to(table.dtype)
    raise ValueError(f'pos_interpolation must be one of {POS_INTERPOLATIONS}, '
                     f'got {mode!r}')


def resize_pos_embed(pos_embed: Tensor, grid: Tuple[int, int],
                     image_hw: Tuple[int, int], mode: str) -> Tensor:
    """``pos_embed`` ``[1, 1 + side**2, D]`` (class row first) for a patch
    grid ``(h, w)`` of an input of ``image_hw`` pixels: ``[1, 1 + h*w, D]``."""
    positions = pos_embed.shape[1] - 1
    side = math.isqrt(positions)
    if tuple(grid) == (side, side) and image_hw[0] == image_hw[1]:
        return pos_embed
    dim = pos_embed.shape[-1]
    table = pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    table = resize_patch_table(table, grid, mode)
    table = table.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], dim)
    return torch.cat([pos_embed[:, :1], table], dim=1)
