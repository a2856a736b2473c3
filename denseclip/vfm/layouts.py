"""The key layouts of VFM files, renamed to the one our ViT uses.

Our names are DINO's and DINOv2's own (``vision_transformer.py`` of both
projects), which timm's copies keep: ``cls_token``, ``pos_embed``,
``register_tokens``, ``patch_embed.proj.*``, ``blocks.N.{norm1, attn.qkv,
attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}``, ``norm.*``.

* timm / official (:func:`from_timm`): the names are ours, but
  - training checkpoints nest the weights (``teacher``, ``student``,
    ``state_dict``, ``model``) and prefix them (``module.``, ``backbone.``);
  - DINOv2's large models chunk their blocks (``blocks.C.N.``);
  - timm stores DINOv2's registers as ``reg_token`` and, for a model with
    registers, drops the class token's row of ``pos_embed`` after adding it
    to ``cls_token`` (timm's ``_convert_dinov2``): a zero row is put back,
    which gives the same sum;
  - ``mask_token`` (DINOv2's masked-image training) and ``head.*`` (DINO's
    projection head, a classifier) are not used.
* transformers (:func:`from_transformers`): ``ViTModel`` (DINO's
  ``facebook/dino-vit*``) and ``Dinov2WithRegistersModel``, in the names
  their ``save_pretrained`` writes (``embeddings.*``,
  ``encoder.layer.N.attention.attention.{query,key,value}`` merged into
  ``attn.qkv`` in that order, ...) or the names of transformers 5's modules
  (``layers.N.attention.{q,k,v,o}_proj``), with or without the model-type
  prefix of a task model (``vit.``, ``dinov2_with_registers.``);
  ``pooler.*``, ``classifier.*`` and ``embeddings.mask_token`` are not used.

Each function returns ``(state dict in our names, unused keys, unmapped
keys, notes)``: unused keys are known and left out by design, unmapped ones
are not understood (the loader refuses them).
"""
import math
import re
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

StateDict = Dict[str, Tensor]
Mapped = Tuple[StateDict, List[str], List[str], List[str]]

CONTAINERS = ('teacher', 'student', 'state_dict', 'model', 'module')
PREFIXES = ('module.', 'backbone.', '_orig_mod.')
TRANSFORMERS_PREFIXES = ('vit.', 'dinov2_with_registers.', 'dinov2.')

_TIMM_BLOCK = re.compile(
    r'blocks\.(\d+)\.(norm1|attn\.qkv|attn\.proj|norm2|mlp\.fc1|mlp\.fc2)'
    r'\.(weight|bias)$|blocks\.(\d+)\.(ls1|ls2)\.gamma$')
_TIMM_PLAIN = {'cls_token', 'pos_embed', 'register_tokens',
               'patch_embed.proj.weight', 'patch_embed.proj.bias',
               'norm.weight', 'norm.bias'}

# transformers: name inside a block -> ours (q, k, v are merged apart)
_HF_BLOCK = {
    'attention.output.dense': 'attn.proj',
    'attention.o_proj': 'attn.proj',
    'layernorm_before': 'norm1',
    'layernorm_after': 'norm2',
    'norm1': 'norm1',
    'norm2': 'norm2',
    'intermediate.dense': 'mlp.fc1',
    'output.dense': 'mlp.fc2',
    'mlp.fc1': 'mlp.fc1',
    'mlp.fc2': 'mlp.fc2',
    'layer_scale1.lambda1': 'ls1.gamma',
    'layer_scale2.lambda1': 'ls2.gamma',
}
_HF_QKV = {
    'attention.attention.query': 0, 'attention.attention.key': 1,
    'attention.attention.value': 2, 'attention.q_proj': 0,
    'attention.k_proj': 1, 'attention.v_proj': 2,
}
_HF_PLAIN = {
    'embeddings.cls_token': 'cls_token',
    'embeddings.position_embeddings': 'pos_embed',
    'embeddings.register_tokens': 'register_tokens',
    'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
    'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
    'layernorm.weight': 'norm.weight',
    'layernorm.bias': 'norm.bias',
}
_HF_UNUSED = ('pooler.', 'classifier.', 'embeddings.mask_token')
_HF_LAYER = re.compile(r'(?:encoder\.layer|layers)\.(\d+)\.(.+)\.(weight|bias|lambda1)$')


def unwrap(loaded: dict) -> dict:
    """The weights inside a training checkpoint (``teacher`` first)."""
    for key in CONTAINERS:
        inner = loaded.get(key)
        if isinstance(inner, dict) and inner and not isinstance(
                loaded.get('cls_token'), Tensor):
            return unwrap(inner)
    return loaded


def strip_prefixes(state_dict: StateDict) -> StateDict:
    """Keys without ``module.`` / ``backbone.`` (repeatedly: DINO's
    teacher holds ``backbone.*`` under DistributedDataParallel's ``module.``)."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def is_transformers(state_dict: StateDict) -> bool:
    """Whether the keys are transformers' (``embeddings.*``)."""
    return any(_strip_model_prefix(k).startswith('embeddings.patch_embeddings')
               for k in state_dict)


def is_timm(state_dict: StateDict) -> bool:
    """Whether the keys are DINO's / DINOv2's / timm's ViT."""
    return 'patch_embed.proj.weight' in state_dict and 'cls_token' in state_dict


def _square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def from_timm(state_dict: StateDict) -> Mapped:
    """DINO's / DINOv2's / timm's names to ours."""
    out: StateDict = {}
    unused, unmapped, notes = [], [], []
    for key, value in state_dict.items():
        key_ours = re.sub(r'^blocks\.\d+\.(\d+)\.', r'blocks.\1.', key)
        if key_ours == 'reg_token':
            key_ours = 'register_tokens'
        if key_ours == 'mask_token' or key_ours.startswith('head.'):
            unused.append(key)
        elif key_ours in _TIMM_PLAIN or _TIMM_BLOCK.match(key_ours):
            out[key_ours] = value
        else:
            unmapped.append(key)
    pos = out.get('pos_embed')
    if pos is not None and pos.dim() == 3 and 'register_tokens' in out and \
            _square(pos.shape[1]) and not _square(pos.shape[1] - 1):
        # timm folded the class row into cls_token: put a zero row back
        out['pos_embed'] = torch.cat([pos.new_zeros(1, 1, pos.shape[2]), pos],
                                     dim=1)
        notes.append('pos_embed: a zero class row put back (timm keeps the '
                     "class token's position in cls_token)")
    return out, unused, unmapped, notes


def _strip_model_prefix(key: str) -> str:
    for prefix in TRANSFORMERS_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def from_transformers(state_dict: StateDict) -> Mapped:
    """transformers' ``ViTModel`` / ``Dinov2WithRegistersModel`` names to
    ours."""
    out: StateDict = {}
    unused, unmapped = [], []
    qkv: Dict[Tuple[int, str], List[Optional[Tensor]]] = {}
    qkv_keys: Dict[Tuple[int, str], List[str]] = {}
    for key, value in state_dict.items():
        name = _strip_model_prefix(key)
        if name in _HF_PLAIN:
            out[_HF_PLAIN[name]] = value
            continue
        if name.startswith(_HF_UNUSED):
            unused.append(key)
            continue
        match = _HF_LAYER.match(name)
        if match is None:
            unmapped.append(key)
            continue
        layer, inner, kind = int(match[1]), match[2], match[3]
        if inner in _HF_QKV and kind in ('weight', 'bias'):
            slot = qkv.setdefault((layer, kind), [None, None, None])
            slot[_HF_QKV[inner]] = value
            qkv_keys.setdefault((layer, kind), []).append(key)
            continue
        ours = _HF_BLOCK.get(f'{inner}.lambda1' if kind == 'lambda1' else inner)
        if ours is None:
            unmapped.append(key)
        elif kind == 'lambda1':
            out[f'blocks.{layer}.{ours}'] = value
        else:
            out[f'blocks.{layer}.{ours}.{kind}'] = value
    for (layer, kind), parts in sorted(qkv.items()):
        if any(p is None for p in parts):
            unmapped += qkv_keys[layer, kind]  # q, k or v alone: not merged
            continue
        out[f'blocks.{layer}.attn.qkv.{kind}'] = torch.cat(parts, dim=0)
    return out, unused, unmapped, []
