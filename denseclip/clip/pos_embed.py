"""Positional embeddings at another resolution than they were trained for."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# 'bicubic': DINO's scale factors (SCLIP, ClearCLIP, NACLIP); 'maskclip':
# bicubic to the grid's exact size, as MaskCLIP's vit.py resize_pos_embed
POS_INTERPOLATIONS = ('bilinear', 'bicubic', 'maskclip')


def resize_pos_embed(pos_embed: Tensor, grid: Tuple[int, int],
                     mode: str = 'bilinear') -> Tensor:
    """Resize ``[1 + h*w, C]`` positional embeddings to ``[1 + H*W, C]``.

    The spatial part is interpolated on its square grid; the first (class /
    global) position is kept. ``'bilinear'`` to the grid's size (DenseCLIP);
    ``'bicubic'`` as SCLIP, ClearCLIP and NACLIP do it (DINO's recipe: scale
    factors ``(H + 0.1) / side`` and ``(W + 0.1) / side``, so the source
    step is ``side / (H + 0.1)``); ``'maskclip'`` as MaskCLIP's ``vit.py``
    does it (``resize_pos_embed``: bicubic to ``size=(H, W)`` exactly,
    ``align_corners=False``, no antialiasing: source step ``side / H``).
    Both bicubic modes are computed as ``A_h @ X @ A_w^T``
    (:func:`bicubic_matrices`).
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
    if mode == 'bilinear':
        spatial = spatial.reshape(1, side, side, channels).permute(0, 3, 1, 2)
        spatial = F.interpolate(
            spatial, size=tuple(grid), mode='bilinear', align_corners=False)
        spatial = spatial.reshape(channels, -1).permute(1, 0)
    else:
        # the matrices in float64, the products in the embedding's dtype:
        # rows first on [side, side * C], then columns, one GEMM per row
        rows, cols = bicubic_matrices(side, grid, spatial.device,
                                      exact_size=mode == 'maskclip')
        spatial = rows.to(spatial.dtype) @ spatial.reshape(side, -1)
        spatial = torch.matmul(cols.to(spatial.dtype),
                               spatial.view(grid[0], side, channels))
        spatial = spatial.reshape(-1, channels)  # [H * W, C], row-major
    return torch.cat([cls_pos, spatial], dim=0)


def bicubic_matrices(side: int, grid: Tuple[int, int],
                     device: Optional[torch.device] = None,
                     exact_size: bool = False) -> Tuple[Tensor, Tensor]:
    """``A_h [H, side]`` and ``A_w [W, side]`` with ``A_h @ X @ A_w^T`` equal
    to ``F.interpolate(X, mode='bicubic', align_corners=False,
    scale_factor=((H + 0.1) / side, (W + 0.1) / side),
    recompute_scale_factor=False)`` for a ``side x side`` map ``X``; with
    ``exact_size`` to ``F.interpolate(X, size=(H, W), mode='bicubic',
    align_corners=False)`` (MaskCLIP's resize).

    PyTorch's bicubic kernel is separable (its 4 x 4 taps are products of
    per-axis weights, clamped at the border per axis), so each matrix is
    that same call on one-hot maps: row ``k`` of the input all ones gives
    column ``k`` of ``A_h`` (the per-axis weights sum to one). Why: the CUDA
    kernel runs one thread per output position over every channel in turn,
    3.7 ms for ViT-B/16's 768 channels at 512x512 on an H200 (more than the
    last block's attention); the matrix products take microseconds.
    """
    H, W = grid
    eye = torch.eye(side, device=device, dtype=torch.float64)
    # [side, 1, side, side]: map k is one along row k (for A_h) ...
    by_row = eye[:, None, :, None].expand(side, 1, side, side)
    by_col = eye[:, None, None, :].expand(side, 1, side, side)
    maps = torch.cat([by_row, by_col])
    if exact_size:
        out = F.interpolate(maps, size=(H, W), mode='bicubic',
                            align_corners=False)
    else:
        scale = ((H + 0.1) / side, (W + 0.1) / side)
        out = F.interpolate(maps, mode='bicubic', align_corners=False,
                            scale_factor=scale, recompute_scale_factor=False)
        if out.shape[-2:] != (H, W):
            raise ValueError(
                f'bicubic resize of a {side}x{side} grid by {scale} gives '
                f'{tuple(out.shape[-2:])}, not {grid}')
    rows = out[:side, 0, :, 0].t()  # [H, side]
    cols = out[side:, 0, 0, :].t()  # [W, side]
    return rows.contiguous(), cols.contiguous()
