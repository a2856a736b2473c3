"""DenseCLIP's context decoder: text queries attend to the visual context."""
from typing import Optional

import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...clip.attention_heads import merge_heads, split_heads
from ...utils.legacy_args import LEGACY_ARGS, drop_legacy_args


class MultiheadAttention(nn.Module):
    """Multi-head attention with bias-free ``q_proj/k_proj/v_proj`` and an output ``proj``.

    ``softmax(q k^T * head_dim**-0.5) v``, then ``proj`` and dropout.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'width {dim} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        h = self.num_heads
        # default scale of scaled_dot_product_attention is head_dim ** -0.5
        x = F.scaled_dot_product_attention(
            split_heads(self.q_proj(q), h), split_heads(self.k_proj(k), h),
            split_heads(self.v_proj(v), h))
        return self.proj_drop(self.proj(merge_heads(x)))


class TransformerDecoderLayer(nn.Module):
    """Pre-norm decoder layer: self-attention, cross-attention to memory, MLP."""

    def __init__(self, width: int, heads: int, dropout: float = 0.1):
        super().__init__()
        self.self_attn = MultiheadAttention(width, heads, dropout)
        self.cross_attn = MultiheadAttention(width, heads, dropout)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(width, width * 4), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(width * 4, width))

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y)
        x = x + self.cross_attn(self.norm2(x), memory, memory)
        return x + self.dropout(self.mlp(self.norm3(x)))


@MODELS.register_module()
class ContextDecoder(BaseModule):
    """Updates text features ``[B, K, C]`` from a visual context ``[B, N, C_mem]``.

    Memory ``LN, Linear(memory_dim -> width), LN``; text ``LN, Linear(visual_dim
    -> width)``; ``transformer_layers`` pre-norm decoder layers; output
    ``LN, Linear(width -> visual_dim)``. DenseCLIP adds the output, scaled by
    ``gamma``, to the text features (post-model prompting).

    Args:
        transformer_width, transformer_heads, transformer_layers: decoder shape.
        visual_dim: width of the text features (CLIP's embedding width).
        dropout: dropout after attention, in and after the MLP.
        memory_dim: width of the memory tokens; defaults to ``visual_dim``
            (the attention-pool features ``[g; z]``).
    """

    def __init__(self,
                 transformer_width: int = 256,
                 transformer_heads: int = 4,
                 transformer_layers: int = 6,
                 visual_dim: int = 1024,
                 dropout: float = 0.1,
                 memory_dim: Optional[int] = None,
                 init_cfg=(dict(type='TruncNormal', layer='Linear', std=0.02,
                                bias=0.),
                           dict(type='Constant', layer='LayerNorm', val=1.,
                                bias=0.)),
                 **legacy):
        # the reference configs also pass context_length to the decoder
        drop_legacy_args(type(self).__name__, legacy,
                         LEGACY_ARGS | {'context_length'})
        super().__init__(list(init_cfg) if init_cfg else None)
        memory_dim = memory_dim or visual_dim
        self.memory_proj = nn.Sequential(
            nn.LayerNorm(memory_dim), nn.Linear(memory_dim, transformer_width),
            nn.LayerNorm(transformer_width))
        self.text_proj = nn.Sequential(
            nn.LayerNorm(visual_dim), nn.Linear(visual_dim, transformer_width))
        self.decoder = nn.ModuleList([
            TransformerDecoderLayer(transformer_width, transformer_heads,
                                    dropout)
            for _ in range(transformer_layers)
        ])
        self.out_proj = nn.Sequential(
            nn.LayerNorm(transformer_width),
            nn.Linear(transformer_width, visual_dim))

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        memory = self.memory_proj(visual)
        x = self.text_proj(text)
        for layer in self.decoder:
            x = layer(x, memory)
        return self.out_proj(x)
