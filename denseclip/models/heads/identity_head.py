"""DenseCLIP's identity head: the pixel-text score map is the segmentation logit."""
from typing import List, Union

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from ..losses import SeparableLossHeadMixin


@MODELS.register_module()
class IdentityHead(SeparableLossHeadMixin, BaseDecodeHead):
    """Passes its input through, so the decode-head loss applies to it directly.

    DenseCLIP feeds it the score map divided by the temperature ``tau``; with a
    cross-entropy ``loss_decode`` that is the pixel-text matching loss
    ``CE(s / tau, y)``. It has no parameters (no ``conv_seg``), so checkpoints
    hold no ``identity_head.*`` keys. ``in_channels``/``channels``/
    ``num_classes`` are accepted for config compatibility and unused. The
    loss resizes the score map to the label size with two matrix products
    (:func:`~denseclip.models.losses.separable_resize`), not ``F.interpolate``.
    """

    def __init__(self, in_channels: int = 1, channels: int = 1,
                 num_classes: int = 1, **kwargs):
        kwargs.setdefault('dropout_ratio', 0.)
        # a threshold only matters to binary prediction, which this head never
        # makes; giving one silences BaseDecodeHead's warning for num_classes=1
        kwargs.setdefault('threshold', 0.3)
        kwargs['init_cfg'] = None
        super().__init__(in_channels, channels, num_classes=num_classes,
                         **kwargs)
        del self.conv_seg
        self.dropout = None

    def forward(self, inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        return inputs
