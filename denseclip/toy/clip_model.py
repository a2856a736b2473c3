"""Tiny CLIP models in OpenAI's exact file format, for tests and the toy demo.

:class:`OpenAICLIP` re-states OpenAI's ``clip.model.CLIP`` (sequence-first
tensors, the same module tree and parameter names) independently of this
package's towers, so a file written by :func:`write_clip_checkpoint` is read
exactly like ``RN50.pt`` or ``ViT-B-16.pt``: a TorchScript archive made with
``torch.jit.trace`` and ``torch.jit.save``, or a plain state dict.
"""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.atomic_files import atomic_path


class _LayerNorm(nn.LayerNorm):

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).type(x.dtype)


class _QuickGELU(nn.Module):

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class _Block(nn.Module):

    def __init__(self, width: int, heads: int, attn_mask: Tensor = None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = _LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict([('c_fc', nn.Linear(width, width * 4)),
                         ('gelu', _QuickGELU()),
                         ('c_proj', nn.Linear(width * 4, width))]))
        self.ln_2 = _LayerNorm(width)
        self.attn_mask = attn_mask

    def forward(self, x: Tensor) -> Tensor:  # x: [L, N, C]
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False,
                          attn_mask=self.attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):

    def __init__(self, width: int, layers: int, heads: int,
                 attn_mask: Tensor = None):
        super().__init__()
        self.resblocks = nn.Sequential(
            *[_Block(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        return self.resblocks(x)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                OrderedDict([('-1', nn.AvgPool2d(stride)),
                             ('0', nn.Conv2d(inplanes, planes * 4, 1,
                                             bias=False)),
                             ('1', nn.BatchNorm2d(planes * 4))]))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.avgpool(out)
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class _AttentionPool2d(nn.Module):

    def __init__(self, spacial_dim: int, embed_dim: int, num_heads: int,
                 output_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(start_dim=2).permute(2, 0, 1)  # (HW)NC
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x,
            embed_dim_to_check=x.shape[-1],
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
        return x.squeeze(0)


class _ModifiedResNet(nn.Module):

    def __init__(self, layers: Sequence[int], output_dim: int, heads: int,
                 input_resolution: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.attnpool = _AttentionPool2d(input_resolution // 32, width * 32,
                                         heads, output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1):
        layers = [_Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * 4
        layers += [_Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class _VisionTransformer(nn.Module):

    def __init__(self, input_resolution: int, patch_size: int, width: int,
                 layers: int, heads: int, output_dim: int):
        super().__init__()
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size,
                               bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn((input_resolution // patch_size)**2 + 1, width))
        self.ln_pre = _LayerNorm(width)
        self.transformer = _Transformer(width, layers, heads)
        self.ln_post = _LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(
            x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class OpenAICLIP(nn.Module):
    """OpenAI's CLIP module tree: ``visual.*`` image tower plus the text tower.

    ``vision_layers`` is a 4-tuple for a ResNet image tower, an int for a ViT.
    ``vision_heads``: the ViT's attention heads; None for OpenAI's rule, one
    per 64 channels (a TorchScript file written by
    :func:`write_clip_checkpoint` records them in its code, a state dict
    does not: a config that reads one of other heads must name them).
    """

    def __init__(self,
                 embed_dim: int,
                 image_resolution: int,
                 vision_layers: Union[Tuple[int, int, int, int], int],
                 vision_width: int,
                 vision_patch_size: int = None,
                 vision_heads: Optional[int] = None,
                 context_length: int = 77,
                 vocab_size: int = 49408,
                 transformer_width: int = 512,
                 transformer_heads: int = 8,
                 transformer_layers: int = 12):
        super().__init__()
        self.context_length = context_length
        if isinstance(vision_layers, (tuple, list)):
            self.visual = _ModifiedResNet(vision_layers, embed_dim,
                                          vision_width * 32 // 64,
                                          image_resolution, vision_width)
        else:
            self.visual = _VisionTransformer(image_resolution,
                                             vision_patch_size, vision_width,
                                             vision_layers,
                                             vision_heads or
                                             max(vision_width // 64, 1),
                                             embed_dim)
        mask = torch.full((context_length, context_length),
                          float('-inf')).triu_(1)
        self.transformer = _Transformer(transformer_width, transformer_layers,
                                        transformer_heads, mask)
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(
            torch.randn(context_length, transformer_width) * 0.01)
        self.ln_final = _LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(
            torch.randn(transformer_width, embed_dim) * transformer_width**-0.5)
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))

    def encode_image(self, image: Tensor) -> Tensor:
        return self.visual(image)

    def encode_text(self, text: Tensor) -> Tensor:
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image: Tensor, text: Tensor) -> Tuple[Tensor, Tensor]:
        image_features = F.normalize(self.encode_image(image), dim=-1)
        text_features = F.normalize(self.encode_text(text), dim=-1)
        logits = self.logit_scale.exp() * image_features @ text_features.t()
        return logits, logits.t()


# Tiny shapes of the two tower families, small enough for unit tests.
TOY_RESNET = dict(embed_dim=64, image_resolution=64, vision_layers=(1, 1, 1, 1),
                  vision_width=8, context_length=77, transformer_width=32,
                  transformer_heads=4, transformer_layers=2)
TOY_VIT = dict(embed_dim=32, image_resolution=64, vision_layers=2,
               vision_width=64, vision_patch_size=16, context_length=77,
               transformer_width=32, transformer_heads=4, transformer_layers=2)
# The toy demo's CLIP (tools/toy_demo.py, configs/toy/denseclip_toy.py): both
# towers of a real CLIP at small width, fast enough to fine-tune on a CPU.
DEMO_RESNET = dict(embed_dim=64, image_resolution=128,
                   vision_layers=(1, 1, 1, 1), vision_width=16,
                   context_length=77, transformer_width=64,
                   transformer_heads=4, transformer_layers=2)
# The toy CLIPs trained contrastively for MaskCLIP (denseclip.toy.clip_training):
# 64px images; a ResNet whose last stage sees 2x2 positions, a ViT of 8px
# patches (8x8 tokens), 3 blocks (its last block reads tokens that earlier
# blocks have mixed, as in a real CLIP ViT) and 4 heads of 32 channels (not
# OpenAI's 2 of 64: with 2, the last block's class token attends to only some
# of the shapes, and which ones depends on the seed; docs/ovss.md, "On the
# toy problem"); both with a 2-layer width-64 text tower of 4 heads.
TRAINED_RESNET = dict(embed_dim=64, image_resolution=64,
                      vision_layers=(1, 1, 1, 1), vision_width=16,
                      context_length=77, transformer_width=64,
                      transformer_heads=4, transformer_layers=2)
TRAINED_VIT = dict(embed_dim=64, image_resolution=64, vision_layers=3,
                   vision_width=128, vision_patch_size=8, vision_heads=4,
                   context_length=77, transformer_width=64,
                   transformer_heads=4, transformer_layers=2)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give BatchNorm layers non-trivial statistics and affine parameters.

    Fresh BatchNorms are the identity in eval mode and would hide a weight
    that failed to load.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def build_openai_clip(seed: int = 0, **shape) -> OpenAICLIP:
    """An eval-mode :class:`OpenAICLIP` with seeded random weights."""
    torch.manual_seed(seed)
    model = OpenAICLIP(**shape).eval()
    randomize_batchnorm(model, seed)
    return model


def write_clip_checkpoint(model: OpenAICLIP, path: str,
                          torchscript: bool = True) -> str:
    """Save ``model`` as OpenAI does (a traced TorchScript archive) or as a state dict.

    Written through a temporary file in the same folder and renamed, so an
    interrupted write leaves no file under ``path``.
    """
    with atomic_path(path) as tmp:
        if torchscript:
            res = _image_resolution(model)
            image = torch.randn(1, 3, res, res)
            text = torch.zeros(2, model.context_length, dtype=torch.long)
            text[:, 0], text[:, 1], text[:, 2] = 49406, 320, 49407
            with torch.no_grad():
                traced = torch.jit.trace(model.eval(), (image, text),
                                         check_trace=False)
            torch.jit.save(traced, tmp)
        else:
            torch.save(model.state_dict(), tmp)
    return path


def _image_resolution(model: OpenAICLIP) -> int:
    visual = model.visual
    if isinstance(visual, _VisionTransformer):
        side = int((visual.positional_embedding.shape[0] - 1)**0.5)
        return side * visual.conv1.kernel_size[0]
    side = int((visual.attnpool.positional_embedding.shape[0] - 1)**0.5)
    return side * 32

