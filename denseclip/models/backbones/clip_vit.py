"""CLIP's Vision Transformer (ViT-B/32, ViT-B/16, ViT-L/14) as an mmseg backbone."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...clip.activation import QUICK_GELU, check_activation
from ...clip.pos_embed import POS_INTERPOLATIONS, resize_pos_embed
from ...clip.tower import CLIPTower
from ...clip.transformer import LayerNorm, Transformer
from ...utils.legacy_args import drop_legacy_args
from ..layers.dense_last_block import DenseLastBlock

PYRAMID_STRIDES = (4, 8, 16, 32)


def build_pyramid_level(width: int, patch_size: int, stride: int,
                        norm_cfg: dict) -> nn.Module:
    """One level of the ViT feature pyramid: tokens at ``patch_size`` -> ``stride``.

    Finer levels are made with 2x transposed convolutions (norm + GELU between
    them), coarser ones with max pooling, each after a GroupNorm. For patch 16
    (and 8) this is the reference DenseCLIP's ``fpn1..fpn4``, key for key; the
    level at the token stride is a bare GroupNorm.
    """
    layers: List[nn.Module] = [nn.GroupNorm(1, width)]
    if stride < patch_size:
        ups = int(math.log2(patch_size // stride))
        for i in range(ups):
            if i > 0:
                layers += [build_norm_layer(norm_cfg, width)[1], nn.GELU()]
            layers.append(nn.ConvTranspose2d(width, width, 2, stride=2))
    elif stride > patch_size:
        factor = stride // patch_size
        layers.append(nn.MaxPool2d(kernel_size=factor, stride=factor))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


@MODELS.register_module()
class CLIPVisionTransformer(CLIPTower):
    """CLIP ViT with a 4-level feature pyramid (1/4..1/32) for dense prediction.

    The outputs of the blocks in ``out_indices`` become the pyramid levels
    ``fpn1..fpn4``; with ``get_embeddings`` the final tokens go through
    ``ln_post`` and ``proj`` and ``[global, dense]`` is appended (global
    ``[B, output_dim]``, dense ``[B, output_dim, H/p, W/p]``). With
    ``dense_last_block`` a dict ``{'dense', 'key'}`` of MaskCLIP-style dense
    features is appended last (:meth:`dense_features`).

    Args:
        input_resolution: training resolution; the positional embedding of the
            CLIP file is resized to ``input_resolution // patch_size`` per side
            on loading and to the actual token grid on every forward.
        patch_size, width, layers, heads, output_dim: CLIP's ViT shape.
        drop_path_rate: stochastic depth over the blocks.
        out_indices: blocks whose outputs form the pyramid (4 of them); empty
            for no pyramid.
        get_embeddings: append ``[global, dense]`` CLIP embeddings.
        add_class_embedding_twice: reproduce the reference DenseCLIP, whose
            class token is ``2 * class_embedding + positional_embedding[0]``
            (its released ViT-B checkpoint was trained that way). Off by
            default: CLIP adds the class embedding once.
        norm_cfg: norm between the pyramid's transposed convolutions.
        pretrained: an OpenAI CLIP file whose ``visual.*`` tensors are loaded.
        dense_last_block: run the last block as a dense method does and
            append its tokens after ``ln_post`` (before ``proj``) and its
            attention keys, both ``[B, width, H/p, W/p]``:
            ``dict(mode='maskclip' | 'sclip' | 'clearclip' | 'naclip' |
            'vanilla' | 'scclip' | 'proxyclip', residual=None, ffn=None,
            gaussian_std=5.0, anomaly_tokens=None, self_adjust=None,
            fusion=None, cls_weight=None, beta=None, gamma=None)``
            (:class:`~denseclip.models.layers.dense_last_block.DenseLastBlock`;
            the outputs of the blocks it reads are kept for it).
            The block's own forward then runs only if another output needs it.
        return_value_path: the same as ``dense_last_block=dict(mode=
            'maskclip')`` (MaskCLIP's value path; the reference's name).
        pos_interpolation: how positions are resized to the token grid
            (:func:`~denseclip.clip.pos_embed.resize_pos_embed`):
            ``'bilinear'`` (default; DenseCLIP), ``'bicubic'`` (as SCLIP /
            ClearCLIP / NACLIP do, DINO's scale factors) or ``'maskclip'``
            (bicubic to the exact grid, as MaskCLIP's ``vit.py``).
        require_clip_weights: refuse to run on random weights (MaskCLIP;
            see :class:`~denseclip.clip.tower.CLIPTower`).
        activation: ``'quick_gelu'``, ``'gelu'`` or None (default: what the
            CLIP file states, else the table of known files, else QuickGELU;
            :mod:`denseclip.clip.activation`). A value the file contradicts
            is an error.
    """

    clip_tower = 'visual'
    example_file = 'pretrained/ViT-B-16.pt'
    heads_arg = 'heads'
    activation_arg = 'activation'

    def __init__(self,
                 input_resolution: int = 224,
                 patch_size: int = 32,
                 width: int = 768,
                 layers: int = 12,
                 heads: int = 12,
                 output_dim: int = 512,
                 drop_path_rate: float = 0.0,
                 out_indices: Sequence[int] = (3, 5, 7, 11),
                 get_embeddings: bool = False,
                 add_class_embedding_twice: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 pretrained: Optional[str] = None,
                 return_value_path: bool = False,
                 dense_last_block: Optional[dict] = None,
                 pos_interpolation: str = 'bilinear',
                 require_clip_weights: bool = False,
                 activation: Optional[str] = None,
                 init_cfg=None,
                 **legacy):
        drop_legacy_args(type(self).__name__, legacy)
        super().__init__(pretrained=pretrained, init_cfg=init_cfg,
                         require_clip_weights=require_clip_weights)
        self.activation = check_activation(activation, type(self).__name__)
        out_indices = list(out_indices or [])
        if out_indices and len(out_indices) != len(PYRAMID_STRIDES):
            raise ValueError(f'CLIPVisionTransformer: out_indices must name 4 '
                             f'blocks (one per pyramid level), got {out_indices}')
        if any(not 0 <= i < layers for i in out_indices):
            raise ValueError(f'CLIPVisionTransformer: out_indices {out_indices} '
                             f'outside the {layers} blocks')
        if out_indices and (patch_size & (patch_size - 1) or patch_size < 4):
            raise ValueError(f'CLIPVisionTransformer: no feature pyramid for '
                             f'patch_size={patch_size} (a power of two >= 4 is '
                             f'needed); set out_indices=() to use embeddings only')
        self.input_resolution = input_resolution
        self.patch_size = patch_size
        self.width = width
        self.output_dim = output_dim
        self.spatial_size = input_resolution // patch_size
        self.out_indices = out_indices
        self.get_embeddings = get_embeddings
        self.add_class_embedding_twice = add_class_embedding_twice
        if return_value_path and dense_last_block is None:
            dense_last_block = dict(mode='maskclip')
        if pos_interpolation not in POS_INTERPOLATIONS:
            raise ValueError(f'CLIPVisionTransformer: pos_interpolation must '
                             f'be one of {POS_INTERPOLATIONS}, got '
                             f'{pos_interpolation!r}')
        self.pos_interpolation = pos_interpolation
        self.dense_last_block = (DenseLastBlock(**dense_last_block)
                                 if dense_last_block is not None else None)
        if self.dense_last_block is not None:
            self.dense_last_block.bind_depth(layers)

        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn(self.spatial_size**2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(
            width, layers, heads, drop_path_rate=drop_path_rate,
            activation=activation or QUICK_GELU)
        if get_embeddings or self.dense_last_block is not None:
            self.ln_post = LayerNorm(width)
        if get_embeddings:
            self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        if out_indices:
            for level, stride in enumerate(PYRAMID_STRIDES, start=1):
                self.add_module(
                    f'fpn{level}',
                    build_pyramid_level(width, patch_size, stride, norm_cfg))

    def embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patchify and add class token and positions: ``[B, 1 + HW, C]``."""
        x = self.conv1(x.type(self.conv1.weight.dtype))
        B, C, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        pos = resize_pos_embed(self.positional_embedding, (H, W),
                               self.pos_interpolation).to(x.dtype)
        cls = self.class_embedding.to(x.dtype)
        if self.add_class_embedding_twice:
            cls = cls * 2
        x = torch.cat([cls.expand(B, 1, C), x], dim=1) + pos
        return self.ln_pre(x), (H, W)

    def project(self, x: Tensor) -> Tensor:
        """CLIP's output head ``ln_post(x) @ proj``."""
        return self.ln_post(x) @ self.proj

    def dense_features(self, block: nn.Module, x: Tensor,
                       grid: Tuple[int, int],
                       intermediates: Optional[Dict[int, Tensor]] = None,
                       proxy: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The last ``block`` run by :attr:`dense_last_block` on its input
        ``x`` (and the earlier blocks' outputs it reads), then ``ln_post``;
        and its keys. Patch tokens only, as ``[B, width, H, W]`` maps; with
        a vision foundation model's features ``proxy`` (``proxyclip``) on
        that model's grid, the keys resized to it bilinearly."""
        B = x.shape[0]
        y, k = self.dense_last_block(block, x, grid, intermediates, proxy)
        out_grid = tuple(proxy.shape[-2:]) if proxy is not None else grid

        def to_map(t: Tensor, size: Tuple[int, int]) -> Tensor:
            return t[:, 1:].transpose(1, 2).reshape(B, -1, *size)

        key = to_map(k, grid)
        if out_grid != tuple(grid):
            key = F.interpolate(key, size=out_grid, mode='bilinear',
                                align_corners=False)
        return dict(dense=to_map(self.ln_post(y), out_grid), key=key)

    def forward(self, x: Tensor,
                proxy_features: Optional[Tensor] = None) -> Tuple:
        """The outputs described in the class docstring.
        ``proxy_features``: a vision foundation model's patch features
        ``[B, C', H', W']`` for a ``proxyclip`` last block."""
        needs_proxy = (self.dense_last_block is not None and
                       self.dense_last_block.needs_proxy)
        if proxy_features is not None and not needs_proxy:
            raise ValueError(
                'CLIPVisionTransformer: proxy_features are read only by '
                "dense_last_block=dict(mode='proxyclip')")
        x, (H, W) = self.embed(x)
        B = x.shape[0]
        blocks = self.transformer.resblocks
        last = len(blocks) - 1
        # the last block's own output is needed by the pyramid or embeddings
        run_last = self.get_embeddings or last in self.out_indices
        block_outs, dense_outputs = {}, None
        kept = (self.dense_last_block.intermediate_layers
                if self.dense_last_block is not None else set())
        intermediates: Dict[int, Tensor] = {}
        for i, block in enumerate(blocks):
            if i == last and self.dense_last_block is not None:
                dense_outputs = self.dense_features(block, x, (H, W),
                                                    intermediates,
                                                    proxy_features)
                if not run_last:
                    break
            x = block(x)
            if i in kept:
                intermediates[i] = x
            if i in self.out_indices:
                block_outs[i] = x[:, 1:].transpose(1, 2).reshape(B, -1, H, W)
        features = [
            getattr(self, f'fpn{level}')(block_outs[i])
            for level, i in enumerate(self.out_indices, start=1)
        ]
        if self.get_embeddings:
            x = self.project(x)
            dense = x[:, 1:].transpose(1, 2).reshape(B, -1, H, W)
            features.append([x[:, 0], dense])
        if dense_outputs is not None:
            features.append(dense_outputs)
        return tuple(features)

    def is_clip_key(self, key: str) -> bool:
        return not key.startswith('fpn')

    def uses_clip_key(self, key: str) -> bool:
        if key == 'proj':
            return self.get_embeddings
        if key in ('ln_post.weight', 'ln_post.bias'):
            return self.get_embeddings or self.dense_last_block is not None
        return True

    def adapt_clip_state_dict(self, state_dict: dict) -> List[str]:
        key = 'positional_embedding'
        grid = (self.spatial_size, self.spatial_size)
        if key in state_dict and state_dict[key].shape[0] != grid[0] * grid[1] + 1:
            state_dict[key] = resize_pos_embed(state_dict[key], grid,
                                               self.pos_interpolation)
            return [key]
        return []
