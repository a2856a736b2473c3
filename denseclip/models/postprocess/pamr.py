"""PAMR, pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), as
NACLIP and SCLIP run it on their query logits (docs/ovss.md)."""
from typing import Iterator, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

# the 8 neighbours of a 3x3 window, as (row, column) offsets
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if (dy, dx) != (0, 0))


def shifted(x: Tensor, dilations: Sequence[int],
            centre: bool = False) -> Iterator[Tensor]:
    """``x`` ``[B, C, H, W]`` read at each neighbour ``d * (dy, dx)`` for
    every dilation ``d`` (borders replicated); with ``centre``, each
    dilation's window starts with ``x`` itself."""
    H, W = x.shape[-2:]
    for d in dilations:
        padded = F.pad(x, [d] * 4, mode='replicate')
        if centre:
            yield x
        for dy, dx in NEIGHBOURS:
            yield padded[..., d + dy * d:d + dy * d + H,
                         d + dx * d:d + dx * d + W]


@MODELS.register_module()
class PAMR(BaseModule):
    """Refines score maps with the image: each iteration replaces every
    pixel's scores by an affinity-weighted mean of its 8 neighbours at each
    dilation; the affinity of pixel ``i`` to neighbour ``j`` is
    ``softmax_j(-mean_c |I_ic - I_jc| / (1e-8 + 0.1 std_c))`` over all
    neighbours, ``std_c`` the (unbiased) standard deviation of channel ``c``
    over the 3x3 windows of all dilations.

    Args:
        num_iter: iterations (NACLIP: 10).
        dilations: neighbourhood spacings in pixels (NACLIP: 8 and 16).
        query_chunk: score channels refined at once (memory).
        tile_size: the segmentor refines the image in tiles of this many
            pixels a side, each read with a :attr:`halo` of ``num_iter x
            max(dilations)`` pixels around it; None: the whole image at
            once. Everything PAMR computes for a pixel depends only on the
            pixels within ``max(dilations)`` of it per iteration (the
            affinity's std and softmax are over the pixel's own windows), so
            the tiles give the whole image's result (to float rounding) with
            memory bounded by the tile, not by the image.
    """

    def __init__(self, num_iter: int = 10,
                 dilations: Sequence[int] = (8, 16),
                 query_chunk: int = 64,
                 tile_size: Optional[int] = 512):
        super().__init__()
        dilations = tuple(dilations)

        def is_int(v, low):
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        if not is_int(num_iter, 0):
            raise ValueError(f'PAMR: num_iter must be a non-negative '
                             f'integer, got {num_iter!r}')
        if not dilations or not all(is_int(d, 1) for d in dilations):
            raise ValueError(f'PAMR: dilations must be positive integers, '
                             f'got {dilations!r}')
        if not is_int(query_chunk, 1):
            raise ValueError(f'PAMR: query_chunk must be a positive '
                             f'integer, got {query_chunk!r}')
        if tile_size is not None and not is_int(tile_size, 1):
            raise ValueError(f'PAMR: tile_size must be a positive integer '
                             f'or None, got {tile_size!r}')
        self.num_iter = num_iter
        self.dilations = dilations
        self.query_chunk = query_chunk
        self.tile_size = tile_size

    @property
    def halo(self) -> int:
        """Pixels around a tile that its result depends on: each iteration
        reads ``max(dilations)`` further (the affinity too, once)."""
        return max(1, self.num_iter) * max(self.dilations)

    def tiles(self, size: Tuple[int, int]
              ) -> Iterator[Tuple[slice, slice, slice, slice]]:
        """For an image of ``size`` ``(H, W)``: each tile's rows and columns
        with its halo (clipped to the image), and its own rows and columns
        within those. One tile, the image, without ``tile_size``."""
        H, W = size
        step = self.tile_size or max(H, W, 1)
        halo = self.halo
        for y in range(0, H, step):
            for x in range(0, W, step):
                y0, x0 = max(0, y - halo), max(0, x - halo)
                y1 = min(H, y + step + halo)
                x1 = min(W, x + step + halo)
                yield (slice(y0, y1), slice(x0, x1),
                       slice(y - y0, min(H, y + step) - y0),
                       slice(x - x0, min(W, x + step) - x0))

    def refine_tiled(self, image: Tensor, scores: Tensor) -> Tensor:
        """:meth:`propagate` of ``scores`` ``[B, Q, H, W]`` with the affinity
        of ``image`` ``[B, C, H, W]``, tile by tile (:meth:`tiles`)."""
        out = torch.empty_like(scores)
        for rows, cols, inner_rows, inner_cols in self.tiles(
                tuple(image.shape[-2:])):
            refined = self.propagate(scores[..., rows, cols],
                                     self.affinity(image[..., rows, cols]))
            out[..., rows, cols][..., inner_rows, inner_cols] = \
                refined[..., inner_rows, inner_cols]
        return out

    def affinity(self, image: Tensor) -> Tensor:
        """``[B, 8 * len(dilations), H, W]`` neighbour weights of ``image``
        ``[B, C, H, W]`` (they sum to 1 over the neighbours)."""
        image = image.float()
        window = torch.stack(list(shifted(image, self.dilations, True)), 2)
        std = window.std(dim=2)  # [B, C, H, W]
        diffs = torch.stack(
            [(image - n).abs() for n in shifted(image, self.dilations)], 2)
        logits = -(diffs / (1e-8 + 0.1 * std[:, :, None])).mean(dim=1)
        return logits.softmax(dim=1)

    def propagate(self, scores: Tensor, affinity: Tensor) -> Tensor:
        """``num_iter`` refinement steps of ``scores`` ``[B, Q, H, W]`` with
        :meth:`affinity`'s weights, ``query_chunk`` channels at a time."""
        if affinity.shape[-2:] != scores.shape[-2:] or \
                affinity.shape[0] != scores.shape[0]:
            raise ValueError(
                f'PAMR: scores {tuple(scores.shape)} and the affinity of an '
                f'image {tuple(affinity.shape)} differ in batch or size')
        dtype = scores.dtype
        out = []
        for part in scores.float().split(self.query_chunk, dim=1):
            for _ in range(self.num_iter):
                new = torch.zeros_like(part)
                for p, n in enumerate(shifted(part, self.dilations)):
                    new.addcmul_(affinity[:, p:p + 1], n)
                part = new
            out.append(part)
        return torch.cat(out, dim=1).to(dtype)

    def forward(self, image: Tensor, scores: Tensor) -> Tensor:
        """``scores`` ``[B, Q, h, w]`` brought to ``image``'s size
        (bilinear, corners aligned, as the reference) and refined."""
        size: Tuple[int, int] = tuple(image.shape[-2:])
        if tuple(scores.shape[-2:]) != size:
            scores = F.interpolate(scores, size=size, mode='bilinear',
                                   align_corners=True)
        return self.propagate(scores, self.affinity(image))
