"""CLIP's modified ResNet (RN50, RN101, RN50x4, RN50x16, RN50x64) as mmseg backbones.

Differences to a torchvision ResNet, as in CLIP: a 3-convolution stem with an
average pool, anti-aliased strided blocks (an average pool before the strided
convolution and in the shortcut) and, in the attention variant, CLIP's
attention pool run densely. State-dict keys equal OpenAI's ``visual.*`` keys
with the prefix removed.
"""
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...clip.pos_embed import resize_pos_embed
from ...clip.tower import CLIPTower
from ...utils.legacy_args import drop_legacy_args



class Bottleneck(nn.Module):
    """CLIP's bottleneck: all convolutions stride 1, an avgpool does the stride."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 norm_cfg: dict = dict(type='BN')):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, planes)[1]
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, planes)[1]
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, out)[1]
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or inplanes != out:
            self.downsample = nn.Sequential(
                OrderedDict([('-1', nn.AvgPool2d(stride)),
                             ('0', nn.Conv2d(inplanes, out, 1, bias=False)),
                             ('1', build_norm_layer(norm_cfg, out)[1])]))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu(out + identity)


class AttentionPool2d(nn.Module):
    """CLIP's attention pool, run over ``[mean(x); x]`` so every position is kept.

    The first output position is CLIP's global image feature; the others are
    the dense features DenseCLIP matches with text.
    """

    def __init__(self, spacial_dim: int, embed_dim: int, num_heads: int,
                 output_dim: Optional[int] = None):
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads
        self.spacial_dim = spacial_dim
        # CLIP's initialize_parameters
        std = embed_dim**-0.5
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.c_proj):
            nn.init.normal_(proj.weight, std=std)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``[B, C, H, W]`` -> global ``[B, D]`` and dense ``[B, D, H, W]``."""
        B, C, H, W = x.shape
        x = x.flatten(2).permute(0, 2, 1)  # B, HW, C
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        x = x + resize_pos_embed(self.positional_embedding, (H, W)).to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x.transpose(0, 1), key=x.transpose(0, 1),
            value=x.transpose(0, 1),
            embed_dim_to_check=C,
            num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat(
                [self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.,
            out_proj_weight=self.c_proj.weight,
            out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True,
            training=self.training,
            need_weights=False)
        x = x.permute(1, 2, 0)  # B, D, 1 + HW
        return x[:, :, 0], x[:, :, 1:].reshape(B, -1, H, W)


@MODELS.register_module()
class CLIPResNet(CLIPTower):
    """CLIP's modified ResNet; forward returns the four stage maps (1/4..1/32).

    Args:
        layers: blocks per stage, e.g. ``[3, 4, 6, 3]`` for RN50.
        output_dim: CLIP embedding width (used by the attention variant).
        input_resolution: training resolution (used by the attention variant).
        width: stem width; stage ``i`` has ``width * 2**i * 4`` channels.
        pretrained: an OpenAI CLIP file whose ``visual.*`` tensors are loaded.
        norm_cfg: norm layers (BatchNorm as in CLIP).
        norm_eval: keep the norm layers in eval mode while training.
        require_clip_weights: refuse to run on random weights (MaskCLIP;
            see :class:`~denseclip.clip.tower.CLIPTower`).
        dense_last_block: accepted so that a config switching dense modes
            fails clearly: a ResNet CLIP has no last attention block to
            rewire, only MaskCLIP's value path (``mode='maskclip'``, which
            the MaskCLIP head computes).
    """

    clip_tower = 'visual'

    def __init__(self,
                 layers: Sequence[int],
                 output_dim: int = 1024,
                 input_resolution: int = 224,
                 width: int = 64,
                 pretrained: Optional[str] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 require_clip_weights: bool = False,
                 dense_last_block: Optional[dict] = None,
                 init_cfg=None,
                 **legacy):
        drop_legacy_args(type(self).__name__, legacy)
        mode = (dense_last_block or {}).get('mode', 'maskclip')
        if mode != 'maskclip':
            raise ValueError(
                f'{type(self).__name__}: dense_last_block mode {mode!r} '
                f'rewires the last attention block of a CLIP ViT; a ResNet '
                f"CLIP has none (only 'maskclip' applies: the attention "
                f"pool's value path). Use a ViT CLIP file for {mode!r}.")
        super().__init__(pretrained=pretrained, init_cfg=init_cfg,
                         require_clip_weights=require_clip_weights)
        self.layers = list(layers)
        self.output_dim = output_dim
        self.input_resolution = input_resolution
        self.width = width
        self.norm_eval = norm_eval

        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, width // 2)[1]
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, width // 2)[1]
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, width)[1]
        self.avgpool = nn.AvgPool2d(2)
        self.relu = nn.ReLU(inplace=True)

        inplanes = width
        for i, blocks in enumerate(self.layers):
            planes = width * 2**i
            stage = [Bottleneck(inplanes, planes, 1 if i == 0 else 2, norm_cfg)]
            inplanes = planes * Bottleneck.expansion
            stage += [
                Bottleneck(inplanes, planes, 1, norm_cfg)
                for _ in range(1, blocks)
            ]
            self.add_module(f'layer{i + 1}', nn.Sequential(*stage))
        self.out_channels = [width * 2**i * 4 for i in range(len(self.layers))]
        # CLIP's initialize_parameters: each residual branch starts at zero
        for name, param in self.named_parameters():
            if name.startswith('layer') and name.endswith('bn3.weight'):
                nn.init.zeros_(param)

    def stem(self, x: Tensor) -> Tensor:
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2),
                         (self.conv3, self.bn3)):
            x = self.relu(bn(conv(x)))
        return self.avgpool(x)

    def forward_stages(self, x: Tensor) -> List[Tensor]:
        x = self.stem(x.type(self.conv1.weight.dtype))
        outs = []
        for i in range(len(self.layers)):
            x = getattr(self, f'layer{i + 1}')(x)
            outs.append(x)
        return outs

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.forward_stages(x))

    def uses_clip_key(self, key: str) -> bool:
        # the plain ResNet leaves CLIP's attention pool out on purpose
        return not key.startswith('attnpool.')

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


@MODELS.register_module()
class CLIPResNetWithAttention(CLIPResNet):
    """CLIP ResNet that also runs CLIP's attention pool densely.

    Forward returns the four stage maps followed by ``[global, dense]``: the
    attention pool over ``[mean(x5); x5]`` with its positional embedding
    resized to the input, global ``[B, output_dim]`` and dense
    ``[B, output_dim, H/32, W/32]``. The pool has ``width * 32 // 64`` heads as
    in CLIP (RN50/RN101: 32, RN50x4: 40, RN50x16: 48, RN50x64: 64).
    """

    def __init__(self,
                 layers: Sequence[int],
                 output_dim: int = 1024,
                 input_resolution: int = 224,
                 width: int = 64,
                 pretrained: Optional[str] = None,
                 **kwargs):
        super().__init__(layers, output_dim, input_resolution, width,
                         pretrained, **kwargs)
        embed_dim = width * 32
        self.attnpool = AttentionPool2d(input_resolution // 32, embed_dim,
                                        embed_dim // 64, output_dim)

    def forward(self, x: Tensor) -> Tuple:
        outs = self.forward_stages(x)
        global_feat, dense_feat = self.attnpool(outs[-1])
        return (*outs, [global_feat, dense_feat])

    def uses_clip_key(self, key: str) -> bool:
        return True

    def adapt_clip_state_dict(self, state_dict: dict) -> List[str]:
        key = 'attnpool.positional_embedding'
        grid = (self.attnpool.spacial_dim, ) * 2
        if key in state_dict and state_dict[key].shape[0] != grid[0] * grid[1] + 1:
            state_dict[key] = resize_pos_embed(state_dict[key], grid)
            return [key]
        return []
