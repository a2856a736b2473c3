"""DeepLabv2's atrous spatial pyramid pooling head (mmseg 1.x ships only v3's)."""
from typing import List, Sequence

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..losses import SeparableLossHeadMixin


@MODELS.register_module()
class ASPPV2Head(SeparableLossHeadMixin, BaseDecodeHead):
    """DeepLabv2 ASPP: parallel 3x3 convolutions at several dilations, summed.

    Unlike DeepLabv3's ``ASPPHead`` there is no image pooling, no norm or
    activation and no bottleneck: each branch maps the input straight to
    ``channels``, and the sum goes to ``conv_seg`` (MaskCLIP+ replaces that
    classifier with the class text embeddings).

    Args:
        dilations: one branch per dilation (DeepLabv2: 6, 12, 18, 24).
    """

    def __init__(self, dilations: Sequence[int] = (6, 12, 18, 24), **kwargs):
        super().__init__(**kwargs)
        self.dilations = tuple(dilations)
        self.aspp = nn.ModuleList([
            nn.Conv2d(self.in_channels, self.channels, 3, padding=d,
                      dilation=d) for d in self.dilations
        ])
        for conv in self.aspp:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)
        return sum(branch(x) for branch in self.aspp)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.cls_seg(self._forward_feature(inputs))
