"""PAMR, pixel-adaptive mask refinement (Araslanov & Roth, CVPR 2020), as
NACLIP and SCLIP run it on their query logits (docs/ovss.md)."""
from typing import Iterator, Sequence, Tuple

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
    """

    def __init__(self, num_iter: int = 10,
                 dilations: Sequence[int] = (8, 16),
                 query_chunk: int = 64):
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
        self.num_iter = num_iter
        self.dilations = dilations
        self.query_chunk = query_chunk

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
