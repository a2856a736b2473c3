"""A window of a bilinear resize, without computing the rest of it."""
from typing import Tuple

import torch
from torch import Tensor

__all__ = ['resized_crop']


def _taps(out_len: int, in_len: int, window: slice, align_corners: bool,
          device) -> Tuple[Tensor, Tensor, Tensor]:
    """Source indices (lower, upper) and upper weights of output positions
    ``window`` of a resize from ``in_len`` to ``out_len``, with PyTorch's
    source coordinates (``upsample_bilinear2d``)."""
    # float32 coordinates, as PyTorch's kernel computes them for float32
    dst = torch.arange(window.start, window.stop, dtype=torch.float32,
                       device=device)
    if align_corners:
        scale = (in_len - 1) / (out_len - 1) if out_len > 1 else 0.
        src = dst * torch.tensor(scale, dtype=torch.float32)
    else:
        scale = torch.tensor(in_len / out_len, dtype=torch.float32)
        src = ((dst + 0.5) * scale - 0.5).clamp(min=0)
    low = src.floor().long().clamp(max=in_len - 1)
    high = (low + 1).clamp(max=in_len - 1)
    return low, high, src - low


def resized_crop(x: Tensor, size: Tuple[int, int], rows: slice, cols: slice,
                 align_corners: bool = False) -> Tensor:
    """``F.interpolate(x, size, mode='bilinear', align_corners=...)[..., rows,
    cols]`` (to float rounding) for ``x`` ``[B, C, h, w]``, computing only
    the window: memory ``B * C`` times the window, not times ``size``."""
    h, w = x.shape[-2:]
    low, high, weight = _taps(size[0], h, rows, align_corners, x.device)
    x = torch.lerp(x[..., low, :].float(), x[..., high, :].float(),
                   weight[:, None])
    low, high, weight = _taps(size[1], w, cols, align_corners, x.device)
    return torch.lerp(x[..., low], x[..., high], weight)
