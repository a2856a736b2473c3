"""The blocks of DINO's and DINOv2's plain ViT, in their parameter names.

Pre-norm blocks: ``x + ls1(attn(norm1(x)))`` then ``x + ls2(mlp(norm2(x)))``,
LayerNorm with eps 1e-6, one ``qkv`` projection with bias, exact GELU in the
MLP, and LayerScale (a learned per-channel ``gamma``) on each branch for
DINOv2 (an identity for DINO).
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

LAYER_NORM_EPS = 1e-6  # DINO's and DINOv2's


class LayerScale(nn.Module):
    """``x * gamma`` (DINOv2's ``ls1`` / ``ls2``)."""

    def __init__(self, width: int, init: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((width, ), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f'width {width} is not a multiple of heads {heads}')
        self.heads = heads
        self.qkv = nn.Linear(width, width * 3)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, width = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads,
                                  width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, width))


class Mlp(nn.Module):
    """``fc2(gelu(fc1(x)))``, exact GELU."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """One pre-norm transformer block."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0,
                 layer_scale: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attn = Attention(width, heads)
        self.ls1 = LayerScale(width) if layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.ls2 = LayerScale(width) if layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """The patch embedding: a ``patch x patch`` convolution with bias."""

    def __init__(self, patch_size: int, width: int, in_channels: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, width, patch_size, patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)
