"""MaskCLIP's training-free refinements of per-query scores, and the maximum
over a class's synonyms (docs/maskclip.md, docs/ovss.md)."""
import torch
import torch.nn.functional as F
from torch import Tensor


def prompt_denoising(logits: Tensor, thresh: float) -> Tensor:
    """A query whose ``softmax(100 * logits)`` stays below ``thresh`` at
    every position of an image gets the logit -100 there (the reference's)."""
    probs = F.softmax(logits * 100, dim=1)
    confident = probs.flatten(2).amax(dim=2) >= thresh  # [B, Q]
    return logits.masked_fill(~confident[:, :, None, None], -100.)


def key_smoothing(probs: Tensor, keys: Tensor, thresh: float,
                  key_norm: str = 'channel') -> Tensor:
    """Positions whose top probability is below ``thresh`` take
    ``sum_j sim(k_i, k_j) p_j`` over the image; ``key_norm`` is the axis the
    keys are L2-normalised over (``'channel'``: cosine, the paper;
    ``'position'``: the reference code). ``probs`` ``[B, Q, H, W]``, ``keys``
    ``[B, C, H, W]``."""
    B, K, H, W = probs.shape
    if keys.shape[0] != B or tuple(keys.shape[2:]) != (H, W):
        raise ValueError(f'key smoothing: keys {tuple(keys.shape)} do not '
                         f'match the class map {tuple(probs.shape)}')
    p = probs.flatten(2).transpose(1, 2)  # [B, HW, K]
    k = keys.flatten(2).transpose(1, 2).to(p.dtype)  # [B, HW, C]
    k = F.normalize(k, p=2, dim=2 if key_norm == 'channel' else 1)
    smoothed = torch.bmm(k, torch.bmm(k.transpose(1, 2), p))  # (k k^T) p
    uncertain = p.amax(dim=2, keepdim=True) < thresh
    p = torch.where(uncertain, smoothed, p)
    return p.transpose(1, 2).reshape(B, K, H, W)


def max_over_synonyms(scores: Tensor, query_class: Tensor,
                      num_classes: int) -> Tensor:
    """``[B, K, ...]``: each class's maximum over its queries' ``[B, Q, ...]``
    scores (queries class by class, as ``ClassNames.queries``)."""
    if scores.shape[1] != query_class.numel():
        raise ValueError(
            f'max over synonyms: {scores.shape[1]} query scores but '
            f'{query_class.numel()} queries (class names)')
    if query_class.numel() == num_classes:
        return scores
    index = query_class.to(scores.device).view(
        1, -1, *[1] * (scores.dim() - 2)).expand_as(scores)
    out = scores.new_full((scores.shape[0], num_classes, *scores.shape[2:]),
                          float('-inf'))
    return out.scatter_reduce(1, index, scores, 'amax', include_self=True)
