"""open_clip's files (``open_clip_pytorch_model.bin``, ``open_clip_model.
safetensors``, training checkpoints), in OpenAI's names.

open_clip's ``CLIP`` (``src/open_clip/model.py``) names its tensors as
OpenAI's does: ``visual.conv1`` ... ``visual.transformer.resblocks.N.attn.
in_proj_weight`` ... ``visual.proj`` for a ViT, ``visual.attnpool.*`` for a
ResNet, ``token_embedding``, ``positional_embedding``, ``transformer.*``,
``ln_final``, ``text_projection``, ``logit_scale``. What differs:

* ``CustomTextCLIP`` keeps its text tower under ``text.`` (``text.
  token_embedding.weight``, ``text.transformer.resblocks.N...``, ``text.
  text_projection``): the prefix is removed;
* a text projection made an ``nn.Linear`` (``text_projection.weight``,
  ``[out, in]``) is transposed to OpenAI's ``[in, out]`` matrix; one with a
  bias has no OpenAI name and stays unmapped;
* training checkpoints hold ``{'state_dict': {'module.visual...'}}``
  (DistributedDataParallel's prefix), removed as open_clip's own
  ``load_checkpoint`` does; ``logit_bias`` (SigLIP) belongs to no tower.

Image towers made by timm (``visual.trunk.*``) are not CLIP's ViT and are
refused. The ``open_clip_config.json`` of a hub snapshot records what the
tensors cannot tell: the heads (``vision_cfg.width / head_width``,
``text_cfg.heads``) and the activation (``quick_gelu``; open_clip runs GELU
where it is not set).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from torch import Tensor

StateDict = Dict[str, Tensor]

CONFIG_FILE = 'open_clip_config.json'
WEIGHT_FILES = ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')
# buffers some versions saved; rebuilt by the towers
_BUFFERS = ('attn_mask', 'text.attn_mask')
TIMM_TRUNK = 'visual.trunk.'


def has_open_clip_keys(state_dict: StateDict) -> bool:
    """Whether a state dict has names only open_clip gives (``text.``,
    ``module.`` or ``visual.trunk.`` prefixes)."""
    return any(k.startswith(('text.', 'module.', TIMM_TRUNK))
               for k in state_dict)


def to_openai_layout(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """``(OpenAI-layout state dict, keys that have no OpenAI name)``."""
    out: StateDict = {}
    unmapped: List[str] = []
    for key, value in state_dict.items():
        name = key[len('module.'):] if key.startswith('module.') else key
        if name in _BUFFERS:
            continue
        if name.startswith('text.'):
            name = name[len('text.'):]
            if name == 'text_projection.weight':
                name, value = 'text_projection', value.t().contiguous()
            elif name == 'text_projection.bias':
                unmapped.append(key)
                continue
        elif name == 'text_projection.weight':
            name, value = 'text_projection', value.t().contiguous()
        out[name] = value
    return out, unmapped


def timm_trunk_keys(state_dict: StateDict) -> List[str]:
    """The keys of a timm-built image tower (``visual.trunk.*``)."""
    return [k for k in state_dict
            if k.startswith((TIMM_TRUNK, 'module.' + TIMM_TRUNK))]


def config_beside(weights: str) -> Optional[str]:
    """The ``open_clip_config.json`` in the folder of ``weights``, if any."""
    path = osp.join(osp.dirname(osp.abspath(weights)), CONFIG_FILE)
    return path if osp.isfile(path) else None


def read_model_cfg(path: str) -> dict:
    """The ``model_cfg`` of an ``open_clip_config.json``."""
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'{path} cannot be read as JSON: {err}') from err
    model_cfg = config.get('model_cfg') if isinstance(config, dict) else None
    if not isinstance(model_cfg, dict):
        raise ValueError(f'{path} has no model_cfg; is it the '
                         f'{CONFIG_FILE} of an open_clip hub repository?')
    return model_cfg


def tower_heads(model_cfg: dict) -> Dict[str, int]:
    """``{tower: heads}`` by open_clip's defaults (head width 64 for the
    image tower, 8 heads for the text tower) where the config leaves them
    out."""
    vision, text = model_cfg.get('vision_cfg') or {}, \
        model_cfg.get('text_cfg') or {}
    heads = {}
    if isinstance(vision.get('width'), int) and 'timm_model_name' not in vision:
        heads['visual'] = vision['width'] // vision.get('head_width', 64)
    if 'hf_model_name' not in text:
        heads['text'] = text.get('heads', 8)
    return heads


def tower_activation(model_cfg: dict) -> str:
    """``'quick_gelu'`` where ``model_cfg`` sets ``quick_gelu``, else open_clip's
    default ``'gelu'``."""
    return 'quick_gelu' if model_cfg.get('quick_gelu') else 'gelu'
