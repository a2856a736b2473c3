"""A vision foundation model (DINO, DINOv2) giving patch features at any size.

ProxyCLIP (Lan et al., ECCV 2024) replaces the attention of a CLIP ViT's
last block with the similarity of a VFM's patch features; this module gives
those features: the final LayerNorm of the last block's output, patch tokens
only, ``[B, width, H // patch, W // patch]``. That is DINO's
``get_intermediate_layers(x)[0][:, 1:]``, DINOv2's
``get_intermediate_layers(x, reshape=True)[0]``, and transformers'
``last_hidden_state`` without the class and register tokens.
"""
from typing import Iterable, Optional

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..clip.weights_guard import (RandomWeightsError, configured_checkpoint,
                                  on_state_dict_load)
from .arch import read_vfm_arch
from .checkpoint import VFMCheckpointError, VFMLoadReport, load_vfm_weights
from .files import POS_INTERPOLATIONS, VFMArch
from .normalization import INPUT_NORMS, clip_to_imagenet
from .pos_embed import resize_pos_embed
from .vit import LAYER_NORM_EPS, Block, PatchEmbed

_REQUIRED = ('patch_size', 'width', 'layers', 'heads')


class VFMRandomWeightsError(RandomWeightsError, VFMCheckpointError):
    """The VFM would run on random weights."""


@MODELS.register_module()
class VisionFoundationModel(BaseModule):
    """DINO's / DINOv2's plain ViT, frozen, reading the files people download.

    Args:
        patch_size, width, layers, heads: the ViT. Leave them out (None) to
            read them from ``pretrained`` (:func:`~denseclip.vfm.arch.
            read_vfm_arch`: a table name needs no file).
        mlp_ratio: MLP hidden width / width (None: the file's, else 4).
        num_register_tokens: DINOv2's registers, put after the class token
            without position embedding (None: the file's, else 0).
        layer_scale: DINOv2's LayerScale on each branch (None: the file's,
            else False).
        image_size: the training resolution, whose square grid the position
            table holds (None: the file's, else 224; DINO 224, DINOv2 518).
        pos_interpolation: how the table is resized for other inputs:
            ``'dino'``, ``'exact'`` or ``'antialias'``
            (:mod:`denseclip.vfm.pos_embed`; None: the family's, else
            ``'dino'``).
        input_norm: the statistics the input is normalised with: ``'clip'``
            (our segmentors' data preprocessor; renormalised to ImageNet's as
            ProxyCLIP does) or ``'imagenet'`` (used as given).
        pretrained: a VFM file, transformers folder or a name of
            :data:`~denseclip.vfm.files.VFM_FILES` (``'dino_vitb8'``), read
            by ``init_weights`` or, failing that, before the first forward.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` is the same as
            ``pretrained``.

    The module is frozen (no gradients, always in eval mode) and refuses to
    run without its weights (:class:`VFMRandomWeightsError`).
    """

    heads_arg = 'heads'

    def __init__(self,
                 patch_size: Optional[int] = None,
                 width: Optional[int] = None,
                 layers: Optional[int] = None,
                 heads: Optional[int] = None,
                 mlp_ratio: Optional[float] = None,
                 num_register_tokens: Optional[int] = None,
                 layer_scale: Optional[bool] = None,
                 image_size: Optional[int] = None,
                 pos_interpolation: Optional[str] = None,
                 input_norm: str = 'clip',
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        if pretrained is not None and init_cfg is not None:
            raise ValueError(f'{type(self).__name__}: give the VFM file either '
                             f'as pretrained or as init_cfg, not both')
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'{type(self).__name__}: pretrained must be a '
                            f'path or a name, got {type(pretrained).__name__}')
        if input_norm not in INPUT_NORMS:
            raise ValueError(f'input_norm must be one of {INPUT_NORMS}, got '
                             f'{input_norm!r}')
        super().__init__(init_cfg)
        self.pretrained = pretrained
        self.input_norm = input_norm
        arch = self._arch(dict(
            patch_size=patch_size, width=width, layers=layers, heads=heads,
            mlp_ratio=mlp_ratio, num_register_tokens=num_register_tokens,
            layer_scale=layer_scale, image_size=image_size,
            pos_interpolation=pos_interpolation))
        if arch.pos_interpolation not in POS_INTERPOLATIONS:
            raise ValueError(f'pos_interpolation must be one of '
                             f'{POS_INTERPOLATIONS}, got '
                             f'{arch.pos_interpolation!r}')
        if arch.image_size < arch.patch_size:
            raise ValueError(f'image_size {arch.image_size} is smaller than '
                             f'patch_size {arch.patch_size}')
        self.arch = arch
        self.patch_size, self.width, self.heads = (arch.patch_size,
                                                   arch.width, arch.heads)
        self.num_register_tokens = arch.num_register_tokens
        self.pos_interpolation = arch.pos_interpolation
        side = arch.image_size // arch.patch_size

        self.patch_embed = PatchEmbed(arch.patch_size, arch.width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, arch.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + side * side,
                                                  arch.width))
        if arch.num_register_tokens:
            self.register_tokens = nn.Parameter(
                torch.zeros(1, arch.num_register_tokens, arch.width))
        self.blocks = nn.ModuleList(
            Block(arch.width, arch.heads, arch.mlp_ratio, arch.layer_scale)
            for _ in range(arch.layers))
        self.norm = nn.LayerNorm(arch.width, eps=LAYER_NORM_EPS)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

        self.requires_grad_(False)
        super().train(False)
        self.load_report: Optional[VFMLoadReport] = None
        self.weights_from_state_dict = False
        on_state_dict_load(self, self._weight_keys, self._mark_loaded)
        self.register_forward_pre_hook(self._check_weights)

    def _arch(self, given: dict) -> VFMArch:
        checkpoint = self.vfm_checkpoint
        if any(v is None for v in given.values()) and checkpoint is not None:
            found = read_vfm_arch(checkpoint)._asdict()
            return VFMArch(**{k: found[k] if v is None else v
                              for k, v in given.items()})
        missing = [k for k in _REQUIRED if given[k] is None]
        if missing:
            raise ValueError(
                f'{type(self).__name__}: set {", ".join(missing)}, or give '
                f'pretrained= (a VFM file or a name such as dino_vitb8) to '
                f'read the architecture from')
        defaults = VFMArch(1, 1, 1, 1)._asdict()
        return VFMArch(**{k: defaults[k] if v is None else v
                          for k, v in given.items()})

    @property
    def vfm_checkpoint(self) -> Optional[str]:
        """The VFM file read on ``init_weights``, if any."""
        return configured_checkpoint(self.pretrained, self.init_cfg)

    def init_weights(self) -> None:
        checkpoint = self.vfm_checkpoint
        if checkpoint is None:
            super().init_weights()
            return
        self.load_report = load_vfm_weights(self, checkpoint)
        self._is_init = True

    def train(self, mode: bool = True) -> 'VisionFoundationModel':
        """Stays in eval mode: the VFM is frozen."""
        return super().train(False)

    # refusing random weights (as denseclip.clip.weights_guard does for CLIP)
    def _weight_keys(self) -> Iterable[str]:
        return list(self.state_dict())

    def _mark_loaded(self) -> None:
        self.weights_from_state_dict = True

    @staticmethod
    def _check_weights(module: 'VisionFoundationModel', args) -> None:
        if module.load_report is not None or module.weights_from_state_dict:
            return
        checkpoint = module.vfm_checkpoint
        if checkpoint is None:
            raise VFMRandomWeightsError(
                f'{type(module).__name__} has no weights and would run on '
                f'random ones (no VFM file was read and no checkpoint was '
                f'loaded). Set its pretrained= to a VFM file or a name '
                f"(e.g. pretrained='dino_vitb8'; `python "
                f'tools/download_vfm.py --list`), or load a whole checkpoint '
                f'of this model (load_from=, tools/test.py CONFIG CHECKPOINT).')
        print_log(
            f'{type(module).__name__}: reading its weights from {checkpoint} '
            f'before the first forward (init_weights has not run; mmengine '
            f'runs it only before training)', logger='current')
        module.init_weights()

    def patch_grid(self, height: int, width: int):
        """The patch grid ``(H // patch, W // patch)`` of an input size."""
        return height // self.patch_size, width // self.patch_size

    def forward_tokens(self, images: Tensor) -> Tensor:
        """All tokens after the final LayerNorm ``[B, 1 + R + h*w, width]``
        (class, registers, patches) for ImageNet-normalised ``images``."""
        x = images.to(self.patch_embed.proj.weight.dtype)
        height, width = x.shape[-2:]
        x = self.patch_embed(x)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + resize_pos_embed(self.pos_embed, grid, (height, width),
                                 self.pos_interpolation)
        if self.num_register_tokens:
            x = torch.cat([
                x[:, :1],
                self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]
            ], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, images: Tensor) -> Tensor:
        """Patch features ``[B, width, H // patch, W // patch]`` of
        ``images`` ``[B, 3, H, W]`` (normalised as ``input_norm`` says)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'{type(self).__name__} takes images [B, 3, H, '
                             f'W], got shape {tuple(images.shape)}')
        grid = self.patch_grid(*images.shape[-2:])
        if min(grid) < 1:
            raise ValueError(
                f'an input of {tuple(images.shape[-2:])} px is smaller than '
                f'one {self.patch_size} px patch')
        if self.input_norm == 'clip':
            images = clip_to_imagenet(images)
        with torch.no_grad():
            tokens = self.forward_tokens(images)
        patches = tokens[:, 1 + self.num_register_tokens:]
        return patches.transpose(1, 2).reshape(images.shape[0], self.width,
                                               *grid)
