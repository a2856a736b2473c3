"""Anomaly-token resolution (SC-CLIP, Bai et al.): find the few patch tokens
that stand apart from the rest by their local outlier factor, and replace
each with the mean of its non-anomalous 3 x 3 grid neighbours.

The factor is SC-CLIP's (its ``lof_pytorch``), not the textbook one: with
``d`` the **squared** Euclidean distance and ``kdist(p)`` the distance of
``p`` to its ``k``-th nearest other token, its reachability distance uses
the token's own ``kdist`` (textbook LOF uses the neighbour's), so

    lrd(p) = 1 / kdist(p),   LOF(p) = mean_{o in kNN(p)} kdist(p) / kdist(o)

(SC-CLIP's ``k / mean(reach)`` differs by the factor ``k``, which cancels).
Tokens whose factor is above the ``1 - contamination`` quantile of the
image's (linear interpolation) are anomalies: ``contamination`` 0.05 marks
about 5% of them.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def local_outlier_factor(tokens: Tensor, n_neighbors: int) -> Tensor:
    """SC-CLIP's local outlier factor ``[B, N]`` of tokens ``[B, N, C]``
    (``n_neighbors`` is clamped to ``N - 1``)."""
    k = min(n_neighbors, tokens.shape[1] - 1)
    # difference-based distances: exact zeros on the diagonal, and no
    # [B, N, N, C] tensor
    dist = torch.cdist(tokens, tokens,
                       compute_mode='donot_use_mm_for_euclid_dist').pow(2)
    knn_dist, knn_idx = dist.topk(k + 1, dim=-1, largest=False)
    knn_dist, knn_idx = knn_dist[..., 1:], knn_idx[..., 1:]  # drop self
    kdist = knn_dist[..., -1]  # [B, N]
    neighbour_kdist = torch.gather(
        kdist.unsqueeze(1).expand(-1, kdist.shape[1], -1), 2, knn_idx)
    return (kdist.unsqueeze(-1) / neighbour_kdist).mean(-1)


def anomaly_mask(tokens: Tensor, n_neighbors: int = 30,
                 contamination: float = 0.05) -> Tensor:
    """``[B, N]`` True where a token's factor is above the image's
    ``1 - contamination`` quantile."""
    lof = local_outlier_factor(tokens, n_neighbors)
    threshold = torch.quantile(lof.float(), 1 - contamination, dim=-1,
                               keepdim=True)
    return lof > threshold


def fill_from_neighbours(maps: Tensor, mask: Tensor) -> Tensor:
    """``maps [B, C, H, W]`` with each masked position replaced by the mean
    of its unmasked 8-neighbours inside the grid (kept where it has none)."""
    B, C, H, W = maps.shape
    keep = (~mask).to(maps.dtype).view(B, 1, H, W)
    ring = torch.ones(1, 1, 3, 3, dtype=maps.dtype, device=maps.device)
    ring[0, 0, 1, 1] = 0
    total = F.conv2d((maps * keep).reshape(B * C, 1, H, W), ring,
                     padding=1).view(B, C, H, W)
    count = F.conv2d(keep, ring, padding=1)
    update = mask.view(B, 1, H, W) & (count > 0)
    return torch.where(update, total / count.clamp(min=1), maps)


class AnomalyTokenResolver(nn.Module):
    """Resolves the anomaly tokens among the patch tokens of one layer.

    Args:
        n_neighbors: the local outlier factor's ``k`` (SC-CLIP: 30).
        contamination: share of tokens taken as anomalies (SC-CLIP: 0.05).
    """

    def __init__(self, n_neighbors: int = 30, contamination: float = 0.05):
        super().__init__()
        if n_neighbors < 1:
            raise ValueError(f'anomaly_tokens: n_neighbors must be >= 1, got '
                             f'{n_neighbors}')
        if not 0 < contamination < 1:
            raise ValueError(f'anomaly_tokens: contamination must be in '
                             f'(0, 1), got {contamination}')
        self.n_neighbors = n_neighbors
        self.contamination = contamination

    def extra_repr(self) -> str:
        return (f'n_neighbors={self.n_neighbors}, '
                f'contamination={self.contamination}')

    def find(self, patches: Tensor) -> Tensor:
        """The anomaly mask ``[B, N]`` of patch tokens ``[B, N, C]``."""
        if patches.shape[1] < 2:
            return patches.new_zeros(patches.shape[:2], dtype=torch.bool)
        return anomaly_mask(patches, self.n_neighbors, self.contamination)

    @staticmethod
    def fill(patches: Tensor, mask: Tensor, grid: Tuple[int, int]) -> Tensor:
        """Patch tokens ``[B, N, C]`` (row-major on ``grid``) with the masked
        ones replaced from their grid neighbours."""
        B, N, C = patches.shape
        maps = patches.transpose(1, 2).reshape(B, C, *grid)
        maps = fill_from_neighbours(maps, mask.view(B, *grid))
        return maps.flatten(2).transpose(1, 2)

    def forward(self, patches: Tensor,
                grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Resolved patch tokens ``[B, N, C]`` and the anomaly mask."""
        mask = self.find(patches)
        return self.fill(patches, mask, grid), mask
