"""DenseCLIP on any backbone: CLIP-style global and dense embeddings from its last stage."""
from typing import Tuple

from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class BackboneWithEmbeddings(BaseModule):
    """Wraps any mmseg backbone so DenseCLIP can use it in place of a CLIP image tower.

    The wrapped backbone's last stage map ``x4`` ``[B, C, h, w]`` is pooled
    and projected to the text width: ``g = proj(mean(x4))`` (global) and
    ``z = proj(x4)`` per position (dense), one linear projection for both.
    Forward returns the backbone's stage maps followed by ``[g, z]``, the
    output layout of ``CLIPResNetWithAttention``.

    Args:
        backbone: config of the wrapped backbone (e.g. mmseg's ``ResNetV1c``
            with ImageNet weights through its ``init_cfg``).
        in_channels: channels of the last stage map.
        embed_dim: the text width (CLIP's embedding width).
    """

    def __init__(self, backbone: dict, in_channels: int, embed_dim: int,
                 init_cfg=None):
        super().__init__(init_cfg)
        self.backbone = MODELS.build(backbone)
        self.proj = nn.Linear(in_channels, embed_dim)

    def forward(self, x: Tensor) -> Tuple:
        outs = list(self.backbone(x))
        last = outs[-1]
        global_feat = self.proj(last.mean(dim=(2, 3)))
        dense = self.proj(last.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return (*outs, [global_feat, dense])
