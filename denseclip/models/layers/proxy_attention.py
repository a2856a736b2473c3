"""ProxyCLIP's proxy attention (Lan et al., ECCV 2024).

The last CLIP block attends with a vision foundation model's (VFM's) patch
affinities instead of its own ``q k^T``. With ``f`` the VFM's patch
features ``[C', M]`` of one image (``M = H' W'`` positions on the VFM's
grid), each normalised over its channels:

    S = f^T f                               (cosine similarity, [M, M])
    A = gamma * (S - beta * mean(S))        (adaptive normalisation)
    A[A < 0] = -inf                         (masking)
    out = softmax(A, dim=-1) @ up(v)

``v`` is the CLIP block's value of each patch token, ``up`` its bilinear
resize from CLIP's patch grid to the VFM's (``align_corners=False``). The
same weights serve every head, so the heads need not be split. ``mean(S)``
is taken per image (ProxyCLIP's code takes it over the batch, which it runs
one window at a time: the same for a batch of one).

The diagonal of ``S`` is 1, the largest entry of its row, so a row keeps at
least its own position unless ``beta * mean(S) > 1``: features so alike
that every pair is masked. ProxyCLIP's code then takes the softmax of a row
of ``-inf`` and returns NaN for every position of the window; here the
diagonal is never masked, so such a position keeps its own value (the
result is unchanged wherever ProxyCLIP's is a number).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ProxyCLIP's values (its proxyclip_segmentor.py defaults and paper)
PROXY_BETA = 1.2
PROXY_GAMMA = 3.0


class ProxyAttention(nn.Module):
    """The proxy attention of ProxyCLIP (no parameters).

    Args:
        beta: the mean similarity's weight in the threshold.
        gamma: the temperature of the normalised similarities.
    """

    def __init__(self, beta: float = PROXY_BETA, gamma: float = PROXY_GAMMA):
        super().__init__()
        if gamma <= 0:
            raise ValueError(f'proxy attention: gamma must be > 0, got '
                             f'{gamma}')
        self.beta = float(beta)
        self.gamma = float(gamma)

    def extra_repr(self) -> str:
        return f'beta={self.beta}, gamma={self.gamma}'

    def weights(self, proxy: Tensor) -> Tensor:
        """``softmax(A)`` ``[B, M, M]`` from the VFM's features
        ``[B, C', H', W']``."""
        f = F.normalize(proxy.flatten(2).float(), dim=1)
        similarity = f.transpose(1, 2) @ f
        mean = similarity.mean(dim=(1, 2), keepdim=True)
        logits = (similarity - self.beta * mean) * self.gamma
        masked = logits < 0
        masked.diagonal(dim1=1, dim2=2).fill_(False)
        logits = logits.masked_fill(masked, float('-inf'))
        return logits.softmax(dim=-1)

    def forward(self, proxy: Tensor, values: Tensor,
                grid: Tuple[int, int]) -> Tensor:
        """Attention output ``[B, H'*W', C]`` (before ``out_proj``) from the
        VFM's features ``proxy`` ``[B, C', H', W']`` and CLIP's patch values
        ``[B, H*W, C]`` on ``grid`` ``(H, W)``."""
        B, HW, C = values.shape
        if HW != grid[0] * grid[1]:
            raise ValueError(f'proxy attention: {HW} values for a '
                             f'{grid[0]}x{grid[1]} grid')
        if proxy.shape[0] != B:
            raise ValueError(f'proxy attention: {proxy.shape[0]} images of '
                             f'VFM features for {B} of CLIP values')
        target = tuple(proxy.shape[-2:])
        v = values.transpose(1, 2).reshape(B, C, *grid)
        if target != tuple(grid):
            v = F.interpolate(v, size=target, mode='bilinear',
                              align_corners=False)
        v = v.flatten(2).transpose(1, 2)
        return torch.bmm(self.weights(proxy).to(v.dtype), v)
