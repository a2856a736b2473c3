"""A decode head's loss without the scattering resize, ``topk`` or host syncs.

mmseg's ``BaseDecodeHead.loss_by_feat`` resizes the logits to the label size
with ``F.interpolate`` (its backward scatters with atomic adds), computes the
``acc_seg`` metric with a full-resolution ``topk`` and boolean indexing (two
device-to-host copies per head), and, for ``CrossEntropyLoss(avg_non_ignore=
True)``, counts the valid pixels with ``.item()``. :func:`decode_head_loss_by_feat`
computes the same losses and accuracy with :func:`separable_resize`,
:func:`top1_accuracy`, the valid-pixel count kept on the device and, for
mmseg's plain softmax ``CrossEntropyLoss`` (no class weights, no sampler),
:func:`pixel_cross_entropy`'s one-pass backward. Any other loss module is
called exactly as mmseg calls it.

Heads of this package take it through :class:`SeparableLossHeadMixin`; mmseg's
own heads (``FPNHead``, auxiliary ``FCNHead`` ...) through the segmentor
(:class:`~denseclip.models.segmentors.SeparableLossSegmentorMixin` calls
:func:`decode_head_loss`), so configs stay as they are.
"""
from typing import Dict, List

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss
from torch import Tensor, nn

from .pixel_cross_entropy import pixel_cross_entropy
from .separable_resize import separable_resize
from .top1_accuracy import top1_accuracy


def _is_plain_cross_entropy(loss_module: nn.Module) -> bool:
    """mmseg's softmax ``CrossEntropyLoss`` without class weights, mean."""
    return (type(loss_module) is CrossEntropyLoss
            and not loss_module.use_sigmoid and not loss_module.use_mask
            and loss_module.class_weight is None
            and loss_module.reduction == 'mean')


def _cross_entropy(loss_module: CrossEntropyLoss, seg_logits: Tensor,
                   seg_label: Tensor, ignore_index: int) -> Tensor:
    """What ``loss_module(seg_logits, seg_label, ignore_index=...)`` returns,
    through :func:`pixel_cross_entropy`. mmseg divides the summed loss by
    ``label.numel()``, or with ``avg_non_ignore`` by
    ``label.numel() - (label == ignore_index).sum().item()``: that count is
    kept on the device here (same value, no sync)."""
    loss = pixel_cross_entropy(seg_logits, seg_label, ignore_index)
    if loss_module.avg_non_ignore:
        avg_factor = (seg_label != ignore_index).sum()
    else:
        avg_factor = seg_label.numel()
    eps = torch.finfo(torch.float32).eps
    return loss_module.loss_weight * (loss.sum() / (avg_factor + eps))


def decode_head_loss_by_feat(head: BaseDecodeHead, seg_logits: Tensor,
                             batch_data_samples: List) -> Dict[str, Tensor]:
    """``BaseDecodeHead.loss_by_feat`` of ``head``, the same losses and
    ``acc_seg``, computed in float32 (also under autocast) with a separable
    resize to the label size."""
    seg_label = head._stack_batch_gt(batch_data_samples)
    with torch.autocast(seg_logits.device.type, enabled=False):
        seg_logits = separable_resize(seg_logits.float(), seg_label.shape[2:],
                                      head.align_corners)
        seg_weight = (head.sampler.sample(seg_logits, seg_label)
                      if head.sampler is not None else None)
        seg_label = seg_label.squeeze(1)
        losses_decode = (head.loss_decode if isinstance(
            head.loss_decode, nn.ModuleList) else [head.loss_decode])
        loss: Dict[str, Tensor] = {}
        for loss_decode in losses_decode:
            if seg_weight is None and _is_plain_cross_entropy(loss_decode):
                value = _cross_entropy(loss_decode, seg_logits, seg_label,
                                       head.ignore_index)
            else:
                value = loss_decode(seg_logits, seg_label, weight=seg_weight,
                                    ignore_index=head.ignore_index)
            name = loss_decode.loss_name
            loss[name] = loss[name] + value if name in loss else value
        loss['acc_seg'] = top1_accuracy(seg_logits, seg_label,
                                        head.ignore_index)
    return loss


def _has_base_loss(head: nn.Module) -> bool:
    """Whether ``head`` computes its loss as ``BaseDecodeHead`` does."""
    cls = type(head)
    return (isinstance(head, BaseDecodeHead) and cls.loss is BaseDecodeHead.loss
            and cls.loss_by_feat in (BaseDecodeHead.loss_by_feat,
                                     SeparableLossHeadMixin.loss_by_feat))


def head_loss_by_feat(head: nn.Module, seg_logits: Tensor,
                      batch_data_samples: List) -> Dict[str, Tensor]:
    """``head.loss_by_feat(seg_logits, ...)``, through
    :func:`decode_head_loss_by_feat` where the head uses ``BaseDecodeHead``'s
    loss; a head with a loss of its own keeps it."""
    if _has_base_loss(head):
        return decode_head_loss_by_feat(head, seg_logits, batch_data_samples)
    return head.loss_by_feat(seg_logits, batch_data_samples)


def decode_head_loss(head: nn.Module, inputs, batch_data_samples: List,
                     train_cfg) -> Dict[str, Tensor]:
    """``head.loss(inputs, ...)``, through :func:`decode_head_loss_by_feat`
    where the head uses ``BaseDecodeHead``'s loss; a head with a loss of its
    own (point heads, cascades ...) keeps it."""
    if _has_base_loss(head):
        return decode_head_loss_by_feat(head, head.forward(inputs),
                                        batch_data_samples)
    return head.loss(inputs, batch_data_samples, train_cfg)


class SeparableLossHeadMixin:
    """Mixin for a ``BaseDecodeHead`` subclass (list it first): its
    ``loss_by_feat`` is :func:`decode_head_loss_by_feat`."""

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: List) -> Dict[str, Tensor]:
        return decode_head_loss_by_feat(self, seg_logits, batch_data_samples)
