"""mmseg's ``accuracy`` (top-1) without ``topk`` and without host synchronisation."""
from typing import Optional

import torch
from torch import Tensor


def top1_accuracy(pred: Tensor, target: Tensor,
                  ignore_index: Optional[int] = None) -> Tensor:
    """Percentage of non-ignored pixels whose argmax over classes is the label.

    The value of ``mmseg.models.losses.accuracy(pred, target, topk=1,
    ignore_index=ignore_index)`` (same ``eps`` terms, shape ``[1]``), but:
    the first maximum (as ``argmax``) instead of a full-resolution ``topk``,
    and masks combined instead of boolean indexing, so nothing waits for the
    device (mmseg's ``correct[:, target != ignore_index]`` and
    ``target[...].numel()`` each copy a count to the host). Exact ties
    between the top two scores may pick another class than ``topk`` does.

    Args:
        pred: ``[N, C, ...]`` scores.
        target: ``[N, ...]`` labels.
        ignore_index: label value that counts neither as right nor wrong.
    """
    if pred.size(0) == 0:
        return pred.new_tensor(0.)
    if pred.ndim != target.ndim + 1 or pred.size(0) != target.size(0):
        raise ValueError(
            f'top1_accuracy: pred {tuple(pred.shape)} must be target '
            f'{tuple(target.shape)} with a class dimension at 1')
    eps = torch.finfo(torch.float32).eps
    # max(dim).indices: the first maximum, as argmax, in half argmax's time
    # on a CPU (NCHW, class dimension strided)
    correct = pred.max(dim=1).indices == target
    if ignore_index is None:
        hits = correct.sum(dtype=torch.float32).reshape(1) + eps
        return hits * (100.0 / (target.numel() + eps))
    valid = target != ignore_index
    hits = (correct & valid).sum(dtype=torch.float32).reshape(1) + eps
    return hits * (100.0 / (valid.sum(dtype=torch.float32) + eps))
