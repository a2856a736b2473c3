"""DeepLabv2's atrous spatial pyramid pooling head (mmseg 1.x ships only v3's)."""
from typing import List, Sequence

from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..losses import SeparableLossHeadMixin


@MODELS.register_module()
class ASPPV2Head(SeparableLossHeadMixin, BaseDecodeHead):
    """DeepLabv2 ASPP: parallel 3x3 convolutions at several dilations, summed.

    No image pooling and no bottleneck (unlike DeepLabv3's ``ASPPHead``).
    Each branch is a plain biased convolution (DeepLabv2), or with
    ``norm_act`` a ``ConvModule`` (conv, ``norm_cfg``, ``act_cfg``) as in the
    MaskCLIP reference's ``ASPPHeadV2``, whose released students use it.

    Args:
        dilations: one branch per dilation (DeepLabv2: 6, 12, 18, 24).
        norm_act: branches with normalisation and activation.
    """

    def __init__(self, dilations: Sequence[int] = (6, 12, 18, 24),
                 norm_act: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.dilations = tuple(dilations)
        self.norm_act = norm_act
        if norm_act:
            branches = [
                ConvModule(self.in_channels, self.channels,
                           1 if d == 1 else 3, padding=0 if d == 1 else d,
                           dilation=d, conv_cfg=self.conv_cfg,
                           norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
                for d in self.dilations
            ]
        else:
            branches = [
                nn.Conv2d(self.in_channels, self.channels, 3, padding=d,
                          dilation=d) for d in self.dilations
            ]
            for conv in branches:
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)
        # the reference's name: its checkpoints load as they are
        self.aspp_modules = nn.ModuleList(branches)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)
        return sum(branch(x) for branch in self.aspp_modules)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.cls_seg(self._forward_feature(inputs))
