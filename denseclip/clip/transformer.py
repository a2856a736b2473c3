"""CLIP's transformer blocks, with OpenAI's parameter names.

State-dict keys (``resblocks.{i}.attn.in_proj_weight``, ``ln_1``, ``mlp.c_fc`` ...)
equal those of ``clip.model.Transformer`` so OpenAI checkpoints load unchanged.
Tensors are batch-first (``[B, L, C]``) throughout; OpenAI's modules are
sequence-first, which changes no parameter.
"""
from collections import OrderedDict
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from .activation import (QUICK_GELU, QuickGELU, activation_name,  # noqa: F401
                         build_activation)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32, so fp16 weights and inputs stay stable."""

    def forward(self, x: Tensor) -> Tensor:
        orig_type = x.dtype
        return super().forward(x.float()).type(orig_type)


class ResidualAttentionBlock(nn.Module):
    """Pre-norm block: ``x += attn(ln_1(x)); x += mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int, drop_path: float = 0.,
                 activation: str = QUICK_GELU):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict([('c_fc', nn.Linear(width, width * 4)),
                         ('gelu', build_activation(activation)),
                         ('c_proj', nn.Linear(width * 4, width))]))
        self.ln_2 = LayerNorm(width)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        y = self.ln_1(x)
        y = self.attn(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.ln_2(x)))

    def qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Query, key and value projections of ``ln_1(x)``, each ``[B, L, C]``."""
        y = F.linear(self.ln_1(x), self.attn.in_proj_weight,
                     self.attn.in_proj_bias)
        return y.chunk(3, dim=-1)


class Transformer(nn.Module):
    """A stack of :class:`ResidualAttentionBlock` (``resblocks.{i}``).

    Args:
        width: channel width.
        layers: number of blocks.
        heads: attention heads.
        causal: mask attention to earlier positions (CLIP's text tower).
        drop_path_rate: stochastic depth, linearly increasing over blocks.
        activation: the MLPs' ``'quick_gelu'`` or ``'gelu'``
            (:mod:`denseclip.clip.activation`; :meth:`set_activation`).
    """

    def __init__(self,
                 width: int,
                 layers: int,
                 heads: int,
                 causal: bool = False,
                 drop_path_rate: float = 0.,
                 activation: str = QUICK_GELU):
        super().__init__()
        self.width = width
        self.layers = layers
        self.causal = causal
        # computed on the CPU: a model built under torch.device('meta') too
        rates = torch.linspace(0, drop_path_rate, layers,
                               device='cpu').tolist()
        self.resblocks = nn.Sequential(*[
            ResidualAttentionBlock(width, heads, rates[i], activation)
            for i in range(layers)
        ])

    def set_activation(self, activation: str) -> None:
        """Run ``activation`` in every block's MLP (it has no weights, so a
        loaded file's activation can be set after the blocks are built)."""
        for block in self.resblocks:
            if activation_name(block.mlp.gelu) == activation:
                continue
            new = build_activation(activation)
            # while mmengine's init_weights runs (which loads the file) every
            # submodule carries its init record; a module swapped in then
            # needs it too
            record = getattr(block.mlp.gelu, '_params_init_info', None)
            if record is not None:
                new._params_init_info = record
            block.mlp.gelu = new

    def forward(self, x: Tensor) -> Tensor:
        mask = None
        if self.causal:
            length = x.shape[1]
            # additive mask, -inf above the diagonal, as CLIP builds it
            mask = torch.full((length, length), float('-inf'),
                              device=x.device, dtype=x.dtype).triu_(1)
        for block in self.resblocks:
            x = block(x, mask)
        return x

    def init_clip_weights(self) -> None:
        """CLIP's initialisation of the text transformer (``initialize_parameters``)."""
        proj_std = (self.width**-0.5) * ((2 * self.layers)**-0.5)
        attn_std = self.width**-0.5
        fc_std = (2 * self.width)**-0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
