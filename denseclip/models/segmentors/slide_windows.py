"""Sliding-window inference with the windows of all images run through the
model in batches (mmseg's window grid and averaging)."""
from typing import Callable, List, Tuple

import torch
from torch import Tensor

Box = Tuple[int, int, int, int]  # y1, x1, y2, x2


def window_boxes(height: int, width: int, crop: Tuple[int, int],
                 stride: Tuple[int, int]) -> List[Box]:
    """mmseg's slide grid: windows of ``crop`` every ``stride``, the last
    ones moved back inside the image (never larger than the image)."""
    (h_crop, w_crop), (h_stride, w_stride) = crop, stride
    h_grids = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
    boxes = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2 = min(h_idx * h_stride + h_crop, height)
            x2 = min(w_idx * w_stride + w_crop, width)
            boxes.append((max(y2 - h_crop, 0), max(x2 - w_crop, 0), y2, x2))
    return boxes


def batched_slide_inference(forward: Callable[[Tensor], Tensor],
                            inputs: Tensor, crop: Tuple[int, int],
                            stride: Tuple[int, int], channels: int,
                            batch_size: int = 8) -> Tensor:
    """``[B, channels, H, W]``: ``forward``'s window scores (``[n, channels,
    h_crop, w_crop]`` for ``n`` windows) averaged where windows overlap.

    All windows share one size, so those of every image go through
    ``forward`` ``batch_size`` at a time; each batch is added into the sum as
    it comes (no copy of all windows' scores).
    """
    B, _, H, W = inputs.shape
    boxes = window_boxes(H, W, tuple(crop), tuple(stride))
    sums = inputs.new_zeros((B, channels, H, W))
    count = inputs.new_zeros((1, 1, H, W))
    for y1, x1, y2, x2 in boxes:
        count[:, :, y1:y2, x1:x2] += 1
    jobs = [(box, b) for box in boxes for b in range(B)]
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        crops = torch.stack([inputs[b, :, y1:y2, x1:x2]
                             for (y1, x1, y2, x2), b in batch])
        scores = forward(crops)
        for ((y1, x1, y2, x2), b), window in zip(batch, scores):
            sums[b, :, y1:y2, x1:x2] += window.to(sums.dtype)
    return sums.div_(count)
