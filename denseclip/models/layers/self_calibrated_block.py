"""SC-CLIP's last block (Self-Calibrated CLIP, Bai et al.), built from its
three parts; ``DenseLastBlock(mode='scclip')`` runs it.

With ``x`` the last block's input (anomaly tokens resolved:
:mod:`.anomaly_tokens`), ``cls`` its class token, ``P`` its patch tokens,
``A_pre`` / ``A_post`` the cosine affinities of the patch outputs of blocks
``pre_layer`` (its anomalies filled the same way) and ``post_layer``
(:mod:`.self_adjusting_attention`) and ``S`` the sum of the outputs of the
blocks ``fusion_layers`` (:mod:`.multi_level_fusion`)::

    attn(T) = out_proj(W(A_pre, k(T)) v(T)) + cls_weight * cls(T)
    y       = N(A_post) attn(N(A_pre) P) + N(A_post) attn(S)

``k, v`` the last block's projections of ``ln_1(T)``'s patch tokens, ``W``
the self-adjusted attention weights, ``N`` the thresholded row-normalised
aggregation; no residual, no FFN; then ``ln_post``. The patch tokens attend
only to each other; the class token enters as ``cls_weight`` times itself.
With ``self_adjust=False`` the weights are ``softmax(k k^T s)`` alone and
there is no aggregation; with ``fusion=False`` the second term is dropped.
"""
from typing import Dict, Optional, Set, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...clip.attention_heads import merge_heads, split_heads
from .anomaly_tokens import AnomalyTokenResolver
from .multi_level_fusion import sum_of_levels
from .self_adjusting_attention import (aggregate_by_affinity,
                                       cosine_affinity,
                                       self_adjusted_attention)

# SC-CLIP's values per ViT depth (block indices from 0: the output of block
# i); 12 blocks: ViT-B/16 (SuleBai/SC-CLIP configs/base_config.py), 24:
# ViT-L/14 (its issue #5). ``fusion_layers`` is (start, end), end excluded.
SCCLIP_LAYERS: Dict[int, dict] = {
    12: dict(pre_layer=8, post_layer=3, fusion_layers=(3, 10),
             cls_weight=0.3),
    24: dict(pre_layer=16, post_layer=6, fusion_layers=(8, 19),
             cls_weight=0.1),
}
# the affinity threshold of the aggregation and the attention's scale
SELF_ADJUST_DEFAULTS = dict(beta=0.4, scale=3.0)
# anomaly tokens: the local outlier factor's k and the anomalies' share
ANOMALY_DEFAULTS = dict(n_neighbors=30, contamination=0.05)

OptionSpec = Union[None, bool, dict]


class SelfCalibratedBlock(nn.Module):
    """SC-CLIP's self-adjustment and multi-level fusion of the last block.

    Args:
        self_adjust: ``dict(pre_layer, post_layer, beta=0.4, scale=3.0)``;
            None: SC-CLIP's for the tower's depth; False: off.
        fusion: ``dict(layers=(start, end))``; None: SC-CLIP's; False: off.
        cls_weight: weight of the class token added to every patch output
            (None: SC-CLIP's, 0.3 for ViT-B, 0.1 for ViT-L/14).

    :meth:`bind_depth` fills the Nones for a tower of that many blocks
    (SC-CLIP's published values exist for 12 and 24).
    """

    def __init__(self,
                 self_adjust: OptionSpec = None,
                 fusion: OptionSpec = None,
                 cls_weight: Optional[float] = None):
        super().__init__()
        for key, value in (('self_adjust', self_adjust), ('fusion', fusion)):
            if value is True:
                raise ValueError(f"scclip: {key}=True is ambiguous; give None "
                                 f"(SC-CLIP's values), a dict or False")
            if value is not None and value is not False and \
                    not isinstance(value, dict):
                raise TypeError(f'scclip: {key} must be None, False or a '
                                f'dict, got {value!r}')
        self.self_adjust_spec = self_adjust
        self.fusion_spec = fusion
        self.cls_weight_spec = cls_weight
        self.self_adjust: Optional[dict] = None
        self.fusion_layers: Optional[Tuple[int, int]] = None
        self.cls_weight: Optional[float] = None
        self.depth: Optional[int] = None

    def extra_repr(self) -> str:
        return (f'self_adjust={self.self_adjust}, fusion_layers='
                f'{self.fusion_layers}, cls_weight={self.cls_weight}')

    def bind_depth(self, layers: int) -> None:
        """Resolve the settings for a ViT of ``layers`` blocks and check
        that every block read comes before the last."""
        published = SCCLIP_LAYERS.get(layers, {})

        def need(key: str, option: str):
            if key not in published:
                raise ValueError(
                    f'scclip on a {layers}-block ViT: SC-CLIP publishes its '
                    f'layers for {sorted(SCCLIP_LAYERS)} blocks (ViT-B/16, '
                    f'ViT-L/14); give dense_last_block.{option}')
            return published[key]

        if self.self_adjust_spec is False:
            self.self_adjust = None
        else:
            spec = dict(self.self_adjust_spec or {})
            unknown = set(spec) - {'pre_layer', 'post_layer', 'beta', 'scale'}
            if unknown:
                raise ValueError(f'scclip: unknown self_adjust keys '
                                 f'{sorted(unknown)}')
            for key in ('pre_layer', 'post_layer'):
                if key not in spec:
                    spec[key] = need(key, f'self_adjust.{key}')
            self.self_adjust = dict(SELF_ADJUST_DEFAULTS, **spec)
        if self.fusion_spec is False:
            self.fusion_layers = None
        else:
            spec = dict(self.fusion_spec or {})
            if set(spec) - {'layers'}:
                raise ValueError(f'scclip: unknown fusion keys '
                                 f'{sorted(set(spec) - {"layers"})}')
            layers_ = spec.get('layers') or need('fusion_layers',
                                                 'fusion.layers')
            self.fusion_layers = (int(layers_[0]), int(layers_[1]))
            if self.fusion_layers[0] >= self.fusion_layers[1]:
                raise ValueError(f'scclip: fusion.layers {layers_} is empty '
                                 f'(start, end) with end excluded')
        self.cls_weight = (need('cls_weight', 'cls_weight')
                           if self.cls_weight_spec is None
                           else float(self.cls_weight_spec))
        bad = sorted(i for i in self.intermediate_layers
                     if not 0 <= i < layers - 1)
        if bad:
            raise ValueError(f'scclip: blocks {bad} are not before the last '
                             f'of a {layers}-block ViT (indices from 0)')
        self.depth = layers

    @property
    def intermediate_layers(self) -> Set[int]:
        """Blocks whose outputs :meth:`forward` reads."""
        needed: Set[int] = set()
        if self.self_adjust:
            needed |= {self.self_adjust['pre_layer'],
                       self.self_adjust['post_layer']}
        if self.fusion_layers:
            needed |= set(range(*self.fusion_layers))
        return needed

    def attend(self, block: nn.Module, tokens: Tensor,
               guide: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """The patch outputs ``[B, N, C]`` of the last block's attention on
        ``tokens [B, 1 + N, C]`` plus ``cls_weight`` times their class
        token; and the keys ``[B, 1 + N, C]``."""
        _, k, v = block.qkv(tokens)
        attn = block.attn
        heads = attn.num_heads
        kp, vp = split_heads(k[:, 1:], heads), split_heads(v[:, 1:], heads)
        if guide is None:
            out = F.scaled_dot_product_attention(kp, kp, vp)
        else:
            out = self_adjusted_attention(kp, vp, guide,
                                          self.self_adjust['scale'])
        out = F.linear(merge_heads(out), attn.out_proj.weight,
                       attn.out_proj.bias)
        return out + self.cls_weight * tokens[:, :1], k

    def forward(self, block: nn.Module, x: Tensor, grid: Tuple[int, int],
                intermediates: Dict[int, Tensor],
                anomalies: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Tokens ``[B, 1 + N, C]`` (the class token: ``x``'s, unchanged)
        and the last block's keys, for the last ``block``'s input ``x``
        (anomalies already resolved; ``anomalies`` their mask or None)."""
        if self.depth is None:
            raise RuntimeError('SelfCalibratedBlock.bind_depth was not called')
        cls, patches = x[:, :1], x[:, 1:]
        guide = post = None
        if self.self_adjust:
            pre = intermediates[self.self_adjust['pre_layer']][:, 1:]
            if anomalies is not None:
                pre = AnomalyTokenResolver.fill(pre, anomalies, grid)
            guide = cosine_affinity(pre)
            post = cosine_affinity(
                intermediates[self.self_adjust['post_layer']][:, 1:])
            patches = aggregate_by_affinity(patches, guide,
                                            self.self_adjust['beta'])
        y, k = self.attend(block, torch.cat([cls, patches], 1), guide)
        if post is not None:
            y = aggregate_by_affinity(y, post, self.self_adjust['beta'])
        if self.fusion_layers:
            fused, _ = self.attend(
                block, sum_of_levels(intermediates, self.fusion_layers), guide)
            if post is not None:
                fused = aggregate_by_affinity(fused, post,
                                              self.self_adjust['beta'])
            y = y + fused
        return torch.cat([cls, y], 1), k
