"""Tiny random DINO / DINOv2 models of transformers, and their weights in
DINO's, DINOv2's and timm's own layouts, converted here independently of
``denseclip/vfm/layouts.py`` (for tests/test_vfm_*.py)."""
import os.path as osp
import re
from typing import Dict

import torch
from torch import Tensor

WIDTH, LAYERS, HEADS = 32, 2, 2


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter random (LayerNorm and LayerScale weights near 1), so
    a swapped or dropped tensor shows in the outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.dim() == 1 and name.endswith(('weight', 'lambda1')):
                param.copy_(1 + 0.1 * noise)
            else:
                param.copy_(0.2 * noise)
    return model.eval()


def tiny_vit(patch: int, seed: int = 0):
    """A random transformers ``ViTModel`` (DINO's architecture: eps 1e-6),
    trained at a 4 x 4 grid, with its pooler."""
    from transformers import ViTConfig, ViTModel
    config = ViTConfig(hidden_size=WIDTH, num_hidden_layers=LAYERS,
                       num_attention_heads=HEADS, intermediate_size=4 * WIDTH,
                       image_size=4 * patch, patch_size=patch,
                       layer_norm_eps=1e-6, hidden_act='gelu')
    return randomize(ViTModel(config, add_pooling_layer=True), seed)


def tiny_dinov2_reg(seed: int = 0):
    """A random transformers ``Dinov2WithRegistersModel`` (patch 14, 4
    registers, LayerScale) trained at a 4 x 4 grid (56 px)."""
    from transformers import (Dinov2WithRegistersConfig,
                              Dinov2WithRegistersModel)
    config = Dinov2WithRegistersConfig(
        hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        mlp_ratio=4, image_size=56, patch_size=14, num_register_tokens=4)
    return randomize(Dinov2WithRegistersModel(config), seed)


def save_transformers(model, folder: str) -> str:
    model.save_pretrained(folder)
    assert osp.isfile(osp.join(folder, 'config.json'))
    return folder


def hf_weights(folder: str) -> Dict[str, Tensor]:
    from safetensors.torch import load_file
    return load_file(osp.join(folder, 'model.safetensors'))


def to_official(hf: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """transformers' names (as ``save_pretrained`` writes them) to DINO's /
    DINOv2's own (``vision_transformer.py``)."""
    out = {}
    plain = {
        'embeddings.cls_token': 'cls_token',
        'embeddings.mask_token': 'mask_token',
        'embeddings.register_tokens': 'register_tokens',
        'embeddings.position_embeddings': 'pos_embed',
        'embeddings.patch_embeddings.projection.weight':
        'patch_embed.proj.weight',
        'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
        'layernorm.weight': 'norm.weight',
        'layernorm.bias': 'norm.bias',
    }
    inner = [('attention.output.dense', 'attn.proj'),
             ('layernorm_before', 'norm1'), ('layernorm_after', 'norm2'),
             ('intermediate.dense', 'mlp.fc1'), ('output.dense', 'mlp.fc2'),
             ('layer_scale1.lambda1', 'ls1.gamma'),
             ('layer_scale2.lambda1', 'ls2.gamma')]
    for key, value in hf.items():
        if key in plain:
            out[plain[key]] = value
            continue
        if key.startswith('pooler.'):
            continue
        match = re.match(r'encoder\.layer\.(\d+)\.(.+)$', key)
        assert match, key
        layer, rest = match[1], match[2]
        if rest.startswith('attention.attention.'):
            continue  # merged below
        for old, new in inner:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        out[f'blocks.{layer}.{rest}'] = value
    layers = {int(m[1]) for m in (re.match(r'encoder\.layer\.(\d+)\.', k)
                                  for k in hf) if m}
    for layer in layers:
        for kind in ('weight', 'bias'):
            parts = [hf[f'encoder.layer.{layer}.attention.attention.{p}.{kind}']
                     for p in ('query', 'key', 'value')]
            out[f'blocks.{layer}.attn.qkv.{kind}'] = torch.cat(parts)
    return out


def official_to_timm(official: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """DINOv2 with registers as timm stores it (timm's ``_convert_dinov2``:
    ``reg_token``, the class row of ``pos_embed`` folded into ``cls_token``,
    no ``mask_token``); DINO's unchanged but for a classifier ``head``."""
    out = dict(official)
    out.pop('mask_token', None)
    if 'register_tokens' in out:
        out['reg_token'] = out.pop('register_tokens')
        out['cls_token'] = out['cls_token'] + out['pos_embed'][:, 0]
        out['pos_embed'] = out['pos_embed'][:, 1:]
    else:
        out['head.weight'] = torch.zeros(10, official['norm.weight'].shape[0])
        out['head.bias'] = torch.zeros(10)
    return out


def patch_tokens(last_hidden_state: Tensor, skip: int, grid) -> Tensor:
    """transformers' ``last_hidden_state`` without its first ``skip``
    tokens, as ``[B, C, h, w]``."""
    tokens = last_hidden_state[:, skip:]
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2],
                                          *grid)


def write_tiny_dino(path: str, patch: int = 8, seed: int = 0,
                    width: int = WIDTH) -> str:
    """A random DINO-shaped ViT (``WIDTH`` wide, ``LAYERS`` blocks, trained
    at a 4 x 4 grid) saved as a plain state dict in DINO's own names, as
    ``torch.save(model.state_dict())`` of DINO's code writes it."""
    from denseclip.vfm import VisionFoundationModel
    model = VisionFoundationModel(patch_size=patch, width=width,
                                  layers=LAYERS, heads=HEADS,
                                  image_size=4 * patch)
    randomize(model, seed)
    torch.save(model.state_dict(), path)
    return path
