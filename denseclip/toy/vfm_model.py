"""A tiny plain ViT in DINO's / timm's parameter names: the toy VFM.

The same module tree and semantics as DINO's ``VisionTransformer`` (and
timm's without layer scale or registers): ``cls_token [1, 1, C]``,
``pos_embed [1, 1 + N, C]`` for a square training grid, ``patch_embed.proj``
(a ``patch x patch`` convolution with bias), pre-norm blocks
``blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``
(LayerNorm eps 1e-6, heads split as ``reshape(B, N, 3, heads, C // heads)``,
exact GELU) and a final ``norm``: the blocks, patch embedding and DINO's
position interpolation of :mod:`denseclip.vfm`, whose
``VisionFoundationModel`` reads its state dict as a DINO file; it has one
head per 64 channels (at least one), the rule that module applies to a
file without a config.

Inputs are ImageNet-normalised RGB (:func:`imagenet_normalize`), as DINO's.
"""
import torch
from torch import Tensor, nn

from denseclip.vfm.arch import default_heads
from denseclip.vfm.normalization import IMAGENET_MEAN, IMAGENET_STD
from denseclip.vfm.pos_embed import resize_pos_embed
from denseclip.vfm.vit import LAYER_NORM_EPS, Block, PatchEmbed


def imagenet_normalize(rgb01: Tensor) -> Tensor:
    """``[B, 3, H, W]`` RGB in 0..1, normalised by ImageNet's statistics."""
    mean = rgb01.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = rgb01.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


class ToyViT(nn.Module):
    """A plain ViT in DINO's names; ``forward`` gives patch features
    ``norm(last block output)[:, 1:]`` as ``[B, C, H // patch, W // patch]``.

    Args:
        patch_size, width, depth: the ViT (heads:
            :func:`~denseclip.vfm.arch.default_heads`).
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
            Block(width, default_heads(width), mlp_ratio) for _ in range(depth))
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
        x = x + resize_pos_embed(self.pos_embed, grid,
                                 tuple(images.shape[-2:]), 'dino')
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
