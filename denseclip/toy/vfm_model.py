"""A tiny plain ViT in DINO's / timm's parameter names: the toy VFM.

The same module tree and semantics as DINO's ``VisionTransformer`` (and
timm's without layer scale or registers): ``cls_token [1, 1, C]``,
``pos_embed [1, 1 + N, C]`` for a square training grid, ``patch_embed.proj``
(a ``patch x patch`` convolution with bias), pre-norm blocks
``blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``
(LayerNorm eps 1e-6, heads split as ``reshape(B, N, 3, heads, C // heads)``,
exact GELU) and a final ``norm``. Its state dict is what
``denseclip.vfm.VisionFoundationModel`` reads from a DINO file; it has one
head per 64 channels (at least one), the rule that module applies to a
file without a config.

Inputs are ImageNet-normalised RGB (:func:`imagenet_normalize`), as DINO's.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LAYER_NORM_EPS = 1e-6
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINO_OFFSET = 0.1  # DINO's interpolate_pos_encoding


def vfm_heads(width: int) -> int:
    """One head per 64 channels, at least one (DINO's ViTs; what a reader of
    a plain state dict assumes)."""
    return max(width // 64, 1)


def imagenet_normalize(rgb01: Tensor) -> Tensor:
    """``[B, 3, H, W]`` RGB in 0..1, normalised by ImageNet's statistics."""
    mean = rgb01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = rgb01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


class Attention(nn.Module):
    """timm's / DINO's attention: one ``qkv`` Linear with bias, ``proj``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads,
                                  C // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` with exact GELU."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm residual block, no layer scale."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(width, int(width * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """``proj``: a ``patch x patch`` convolution, stride ``patch``, bias."""

    def __init__(self, patch_size: int, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def dino_resize_pos_embed(pos_embed: Tensor, grid: Tuple[int, int],
                          image_hw: Tuple[int, int]) -> Tensor:
    """DINO's ``interpolate_pos_encoding``: the square table bicubically
    rescaled by ``(h + 0.1) / side``, ``(w + 0.1) / side``; unchanged for the
    training grid of a square input."""
    side = math.isqrt(pos_embed.shape[1] - 1)
    h, w = grid
    if (h, w) == (side, side) and image_hw[0] == image_hw[1]:
        return pos_embed
    dim = pos_embed.shape[-1]
    table = pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    table = F.interpolate(table, mode='bicubic',
                          scale_factor=((h + DINO_OFFSET) / side,
                                        (w + DINO_OFFSET) / side))
    table = table.permute(0, 2, 3, 1).reshape(1, h * w, dim)
    return torch.cat([pos_embed[:, :1], table], dim=1)


class ToyViT(nn.Module):
    """A plain ViT in DINO's names; ``forward`` gives patch features
    ``norm(last block output)[:, 1:]`` as ``[B, C, H // patch, W // patch]``.

    Args:
        patch_size, width, depth: the ViT (heads: :func:`vfm_heads`).
        image_size: the square training resolution (the position table's grid).
        mlp_ratio: MLP hidden width / width.
    """

    def __init__(self, patch_size: int = 8, width: int = 64, depth: int = 3,
                 image_size: int = 96, mlp_ratio: float = 4.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f'image_size {image_size} is not a multiple of '
                             f'patch_size {patch_size}')
        self.patch_size = patch_size
        self.width = width
        side = image_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + side * side, width))
        self.blocks = nn.ModuleList(
            Block(width, vfm_heads(width), mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self._init_weights()

    def _init_weights(self) -> None:
        """DINO's: truncated normal (std 0.02) positions, class token and
        Linear weights, zero biases, LayerNorms at 1 and 0."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def tokens(self, images: Tensor) -> Tensor:
        """All tokens after the final norm ``[B, 1 + h*w, C]``, class first."""
        x = self.patch_embed(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + dino_resize_pos_embed(self.pos_embed, grid,
                                      tuple(images.shape[-2:]))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, images: Tensor) -> Tensor:
        """Patch features ``[B, C, H // patch, W // patch]`` of
        ImageNet-normalised ``images`` ``[B, 3, H, W]``."""
        B = images.shape[0]
        h, w = (s // self.patch_size for s in images.shape[-2:])
        return self.tokens(images)[:, 1:].transpose(1, 2).reshape(
            B, self.width, h, w)
