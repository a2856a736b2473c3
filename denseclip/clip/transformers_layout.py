"""Hugging Face transformers' ``CLIPModel`` files, in OpenAI's names.

A ``CLIPModel`` folder (``openai/clip-vit-base-patch16`` ...) holds
``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``. Its keys
(``transformers/models/clip/modeling_clip.py``) map one to one onto OpenAI's,
except that each attention block keeps q, k and v as three projections
(``self_attn.{q,k,v}_proj``), merged here into ``attn.in_proj_weight`` /
``in_proj_bias`` in that order (``nn.MultiheadAttention``'s), and that the
projections are ``nn.Linear`` without bias (``[out, in]``; OpenAI's are
``[in, out]`` matrices). The config records what the tensors cannot tell:
each tower's attention heads and activation (``hidden_act``).
"""
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

StateDict = Dict[str, Tensor]

CONFIG_FILE = 'config.json'
WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
TOWER_PREFIXES = {'visual': 'vision_model.', 'text': 'text_model.'}
_TOWER_CONFIGS = {'visual': 'vision_config', 'text': 'text_config'}
# transformers' hidden_act values we run, by our name
_ACTIVATIONS = {'quick_gelu': 'quick_gelu', 'gelu': 'gelu'}

# name inside a block -> OpenAI's
_BLOCK = {
    'self_attn.out_proj.weight': 'attn.out_proj.weight',
    'self_attn.out_proj.bias': 'attn.out_proj.bias',
    'layer_norm1.weight': 'ln_1.weight',
    'layer_norm1.bias': 'ln_1.bias',
    'layer_norm2.weight': 'ln_2.weight',
    'layer_norm2.bias': 'ln_2.bias',
    'mlp.fc1.weight': 'mlp.c_fc.weight',
    'mlp.fc1.bias': 'mlp.c_fc.bias',
    'mlp.fc2.weight': 'mlp.c_proj.weight',
    'mlp.fc2.bias': 'mlp.c_proj.bias',
}
# whole-model name -> OpenAI's, outside the blocks
_PLAIN = {
    'vision_model.embeddings.class_embedding': 'visual.class_embedding',
    'vision_model.embeddings.patch_embedding.weight': 'visual.conv1.weight',
    'vision_model.embeddings.position_embedding.weight':
    'visual.positional_embedding',
    'vision_model.pre_layrnorm.weight': 'visual.ln_pre.weight',
    'vision_model.pre_layrnorm.bias': 'visual.ln_pre.bias',
    'vision_model.post_layernorm.weight': 'visual.ln_post.weight',
    'vision_model.post_layernorm.bias': 'visual.ln_post.bias',
    'text_model.embeddings.token_embedding.weight': 'token_embedding.weight',
    'text_model.embeddings.position_embedding.weight': 'positional_embedding',
    'text_model.final_layer_norm.weight': 'ln_final.weight',
    'text_model.final_layer_norm.bias': 'ln_final.bias',
    'logit_scale': 'logit_scale',
}
# nn.Linear weights [out, in] -> OpenAI's [in, out] matrices
_PROJECTIONS = {
    'visual_projection.weight': 'visual.proj',
    'text_projection.weight': 'text_projection',
}
# buffers older transformers saved; positions 0..n-1, nothing to load
_BUFFERS = ('vision_model.embeddings.position_ids',
            'text_model.embeddings.position_ids')
_LAYER = re.compile(r'(vision_model|text_model)\.encoder\.layers\.(\d+)\.(.+)$')
_QKV = re.compile(r'self_attn\.([qkv])_proj\.(weight|bias)$')
_OPENAI_BLOCKS = {'vision_model': 'visual.transformer.resblocks.',
                  'text_model': 'transformer.resblocks.'}


def has_transformers_keys(state_dict: StateDict) -> bool:
    """Whether a state dict is named as transformers' ``CLIPModel`` names it."""
    return any(k.startswith(tuple(TOWER_PREFIXES.values()))
               for k in state_dict)


def to_openai_layout(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """``(OpenAI-layout state dict, keys that have no OpenAI name)``.

    A block whose q, k or v projection is incomplete keeps them unmapped
    (the tower's ``in_proj_*`` is then reported missing).
    """
    out: StateDict = {}
    unmapped: List[str] = []
    # (block prefix, 'weight' | 'bias') -> {'q' | 'k' | 'v': (key, tensor)}
    qkv: Dict[Tuple[str, str], Dict[str, Tuple[str, Tensor]]] = {}
    for key, value in state_dict.items():
        if key in _PLAIN:
            out[_PLAIN[key]] = value
        elif key in _PROJECTIONS:
            out[_PROJECTIONS[key]] = value.t().contiguous()
        elif key in _BUFFERS:
            continue
        elif (match := _LAYER.match(key)) is not None:
            tower, index, rest = match.groups()
            prefix = f'{_OPENAI_BLOCKS[tower]}{index}.'
            if rest in _BLOCK:
                out[prefix + _BLOCK[rest]] = value
            elif (part := _QKV.match(rest)) is not None:
                qkv.setdefault((prefix, part.group(2)),
                               {})[part.group(1)] = (key, value)
            else:
                unmapped.append(key)
        else:
            unmapped.append(key)
    for (prefix, kind), parts in qkv.items():
        if set(parts) == {'q', 'k', 'v'}:
            out[f'{prefix}attn.in_proj_{kind}'] = torch.cat(
                [parts[p][1] for p in 'qkv'])
        else:
            unmapped += [key for key, _ in parts.values()]
    return out, unmapped


def read_config(path: str) -> dict:
    """The ``config.json`` at ``path``, checked to be a ``CLIPModel``'s."""
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'{path} cannot be read as JSON: {err}') from err
    if not isinstance(config, dict) or not any(
            c in config for c in _TOWER_CONFIGS.values()):
        raise ValueError(
            f'{path} is not the config of a transformers CLIPModel (it has '
            f'neither vision_config nor text_config); give the folder that '
            f'CLIPModel.save_pretrained wrote, or a hub snapshot of one')
    return config


def tower_heads(config: dict) -> Dict[str, int]:
    """``{tower: num_attention_heads}`` where the config records them."""
    heads = {}
    for tower, name in _TOWER_CONFIGS.items():
        value = (config.get(name) or {}).get('num_attention_heads')
        if isinstance(value, int) and value > 0:
            heads[tower] = value
    return heads


def tower_activations(config: dict, path: str) -> Dict[str, str]:
    """``{tower: activation}`` from each tower config's ``hidden_act``.

    Raises:
        ValueError: an activation that CLIP's blocks here do not run.
    """
    found = {}
    for tower, name in _TOWER_CONFIGS.items():
        act = (config.get(name) or {}).get('hidden_act')
        if act is None:
            continue
        if act not in _ACTIVATIONS:
            raise ValueError(
                f"{path}: {name}.hidden_act is {act!r}; the CLIP towers here "
                f"run {' or '.join(map(repr, _ACTIVATIONS))}")
        found[tower] = _ACTIVATIONS[act]
    return found


def config_beside(weights: str) -> Optional[str]:
    """The ``config.json`` in the folder of ``weights``, if there is one."""
    path = osp.join(osp.dirname(osp.abspath(weights)), CONFIG_FILE)
    return path if osp.isfile(path) else None
