"""DenseCLIP run as the reference implementation runs it, for the reference rows.

The reference (mmseg 0.x) runs the whole text encoder, every class's full
sequence, on every forward, and slide inference one crop at a time with each
crop's logits zero-padded to the image size and summed.
"""
from typing import List

import torch
import torch.nn.functional as F
from torch import nn


def as_the_reference(model: nn.Module) -> None:
    """DenseCLIP's text encoder as the reference ran it: every class's whole
    sequence, no cache (undo with :func:`as_ours`)."""
    model.cache_text = False
    model.share_text_prefix = False


def as_ours(model: nn.Module) -> None:
    """Text features cached, the shared prefix encoded once (the default)."""
    model.cache_text = True
    model.share_text_prefix = True


def reference_slide_inference(model: nn.Module, inputs: torch.Tensor,
                              batch_img_metas: List[dict]) -> torch.Tensor:
    """mmseg 0.x's ``EncoderDecoder.slide_inference``: crops one at a time
    through ``encode_decode`` (the whole text encoder on each after
    :func:`as_the_reference`), each crop's logits zero-padded to the image
    size and added, then divided by the count."""
    h_stride, w_stride = model.test_cfg.stride
    h_crop, w_crop = model.test_cfg.crop_size
    batch_size, _, h_img, w_img = inputs.size()
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    preds = inputs.new_zeros((batch_size, model.out_channels, h_img, w_img))
    count_mat = inputs.new_zeros((batch_size, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * h_stride, w_idx * w_stride
            y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
            y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
            crop_img = inputs[:, :, y1:y2, x1:x2]
            metas = [dict(m, img_shape=crop_img.shape[2:])
                     for m in batch_img_metas]
            crop_seg_logit = model.encode_decode(crop_img, metas)
            preds += F.pad(crop_seg_logit,
                           (int(x1), int(preds.shape[3] - x2), int(y1),
                            int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
    return preds / count_mat
