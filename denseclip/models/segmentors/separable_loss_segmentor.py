"""Segmentor mixin: every decode and auxiliary head's loss through the separable loss path."""
from typing import Dict, List

from mmseg.utils import add_prefix
from torch import Tensor, nn

from ..losses import decode_head_loss


class SeparableLossSegmentorMixin:
    """Mixin for an mmseg ``EncoderDecoder`` subclass (list it first).

    The decode head and the auxiliary heads compute their losses with
    :func:`~denseclip.models.losses.decode_head_loss`: mmseg's own heads
    (``FPNHead``, ``FCNHead`` ...) get the separable resize, argmax accuracy
    and sync-free loss path without a change to their config; the loss keys
    are mmseg's (``decode.loss_ce``, ``aux.acc_seg`` ...).
    """

    def _decode_head_forward_train(self, inputs: List[Tensor],
                                   data_samples: List) -> Dict[str, Tensor]:
        return add_prefix(
            decode_head_loss(self.decode_head, inputs, data_samples,
                             self.train_cfg), 'decode')

    def _auxiliary_head_forward_train(self, inputs: List[Tensor],
                                      data_samples: List) -> Dict[str, Tensor]:
        losses = {}
        if isinstance(self.auxiliary_head, nn.ModuleList):
            for idx, head in enumerate(self.auxiliary_head):
                losses.update(add_prefix(
                    decode_head_loss(head, inputs, data_samples,
                                     self.train_cfg), f'aux_{idx}'))
        else:
            losses.update(add_prefix(
                decode_head_loss(self.auxiliary_head, inputs, data_samples,
                                 self.train_cfg), 'aux'))
        return losses
