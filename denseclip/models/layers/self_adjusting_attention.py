"""SC-CLIP's self-adjustment (Bai et al.): CLIP's intermediate patch
features are semantically coherent where its last layers are not, so their
cosine affinity ``A`` steers the last block.

- **aggregation**: tokens ``x`` become ``N(A_beta) x``, where ``A_beta`` is
  ``A`` with entries below ``beta`` (0.4) set to 0 and ``N`` divides each
  row by its sum (plus 1e-6);
- **attention**: the last block's attention weights are the mean of
  ``softmax(mask(A))``, with ``mask(A) = scale * (A - mean(A))`` (scale 3,
  the mean over the image's ``N x N`` affinities) and its negative entries
  ``-inf``, and the keys' own ``softmax(k k^T / sqrt(d))``, per head.
"""
import torch.nn.functional as F
from torch import Tensor


def cosine_affinity(features: Tensor) -> Tensor:
    """Cosine similarity ``[B, N, N]`` of tokens ``[B, N, C]``."""
    features = features / features.norm(dim=-1, keepdim=True)
    return features @ features.transpose(1, 2)


def aggregate_by_affinity(tokens: Tensor, affinity: Tensor,
                          beta: float) -> Tensor:
    """Tokens ``[B, N, C]`` averaged over their neighbours in ``affinity``:
    entries below ``beta`` dropped, rows normalised to sum 1."""
    weights = affinity.masked_fill(affinity < beta, 0.)
    weights = weights / (weights.sum(-1, keepdim=True) + 1e-6)
    return weights @ tokens


def affinity_attention_logits(affinity: Tensor, scale: float) -> Tensor:
    """``scale * (A - mean(A))`` per image, ``-inf`` where negative."""
    centred = (affinity - affinity.mean((1, 2), keepdim=True)) * scale
    return centred.masked_fill(centred < 0, float('-inf'))


def self_adjusted_attention(k: Tensor, v: Tensor, affinity: Tensor,
                            scale: float) -> Tensor:
    """Per-head ``[B, h, N, d]`` output of the weights
    ``(softmax(mask(A)) + softmax(k k^T / sqrt(d))) / 2`` on ``v``."""
    guide = F.softmax(affinity_attention_logits(affinity, scale), dim=-1)
    # the affinity's weights are the same for every head
    return (guide.unsqueeze(1).to(v.dtype) @ v +
            F.scaled_dot_product_attention(k, k, v)) / 2
