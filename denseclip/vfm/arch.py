"""The architecture of a VFM file, read from its tensors and its config.

So that a config may say only ``pretrained=...``: the patch size and width
come from the patch embedding, the depth from the blocks, the MLP ratio from
``mlp.fc1``, registers and LayerScale from their tensors, the training
resolution from the position table's grid (times the patch size), the heads
from transformers' ``config.json`` where there is one, else one head per 64
channels (DINO's and DINOv2's ViT-S/B/L all have 64-channel heads). The
position interpolation follows the family: DINOv2 with registers resizes
with antialiasing (its official hub models and transformers'
``Dinov2WithRegistersModel`` agree), DINO and DINOv2 without registers with
DINO's offset scale factor. A table name gives the table's architecture
without reading any file.
"""
import math
import os.path as osp
import re
from typing import Optional

from torch import Tensor

from .checkpoint import VFMCheckpointError, read_vfm_file
from .files import (ANTIALIAS_INTERPOLATION, DINO_INTERPOLATION,
                    UnknownVFMError, VFMArch, get)

_BLOCK = re.compile(r'blocks\.(\d+)\.norm1\.weight$')


def default_heads(width: int) -> int:
    """One head per 64 channels, at least one: DINO's ViTs, and what a
    state dict without a config is read as."""
    return max(width // 64, 1)


def arch_from_state_dict(state_dict: dict,
                         config: Optional[dict] = None) -> VFMArch:
    """The :class:`VFMArch` of a state dict in our layout (and the
    transformers ``config.json`` it came with)."""
    patch: Tensor = state_dict['patch_embed.proj.weight']
    width, patch_size = int(patch.shape[0]), int(patch.shape[-1])
    layers = 1 + max(int(m[1]) for m in map(_BLOCK.match, state_dict) if m)
    mlp_ratio = state_dict['blocks.0.mlp.fc1.weight'].shape[0] / width
    registers = state_dict.get('register_tokens')
    num_registers = int(registers.shape[1]) if registers is not None else 0
    positions = int(state_dict['pos_embed'].shape[1]) - 1
    side = math.isqrt(positions)
    if side * side != positions:
        raise ValueError(f'pos_embed holds {positions} patch positions, not a '
                         f'square grid')
    heads = ((config or {}).get('num_attention_heads')
             or default_heads(width))
    return VFMArch(
        patch_size=patch_size, width=width, layers=layers, heads=int(heads),
        mlp_ratio=float(mlp_ratio), num_register_tokens=num_registers,
        layer_scale='blocks.0.ls1.gamma' in state_dict,
        image_size=side * patch_size,
        pos_interpolation=(ANTIALIAS_INTERPOLATION if num_registers
                           else DINO_INTERPOLATION))


def read_vfm_arch(name_or_path: str) -> VFMArch:
    """The architecture of a VFM file, transformers folder or table name.

    An existing file is read (and checked: :func:`read_vfm_file`); a table
    name, or a missing path whose file name is a table name
    (``pretrained/dino_vitb8.safetensors``), gives the table's values, so a
    config can be built before the weights are downloaded.
    """
    if not osp.exists(str(name_or_path)):
        try:
            return get(name_or_path).arch
        except UnknownVFMError:
            pass  # read_vfm_file says what is missing
    info = read_vfm_file(name_or_path)
    try:
        return arch_from_state_dict(info.state_dict, info.config)
    except (KeyError, ValueError) as err:
        raise VFMCheckpointError(
            f'{info.weights}: cannot read a ViT architecture from it '
            f'({type(err).__name__}: {err})') from err
