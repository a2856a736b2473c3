"""MaskCLIP's visual projections, from an OpenAI CLIP file or the reference's file.

MaskCLIP turns backbone features into CLIP's embedding space with CLIP's own
output layers, applied per position:

* ResNet: the attention pool's ``v_proj`` then ``c_proj`` (and ``k_proj`` for
  key smoothing); ``q_proj`` is not needed (no attention is computed);
* ViT: the output projection ``proj`` (``[width, embed_dim]`` in CLIP).

The reference stores them in a file written by its
``tools/*/convert_clip_weights.py``: a dict of name -> ``{'weight', 'bias'}``
with ``[out, in]`` matrices (``'proj': {'weight': visual.proj.t()}`` for a ViT;
``q_proj``/``k_proj``/``v_proj``/``c_proj`` with biases for a ResNet), plus a
``'clip'`` entry holding the backbone, which its head ignores and so do we.
"""
from typing import Dict

import torch
from torch import Tensor

from ...clip.checkpoint import CLIPCheckpointError, StateDict

Projections = Dict[str, Dict[str, Tensor]]

RESNET_PROJECTIONS = ('q_proj', 'k_proj', 'v_proj', 'c_proj')


def projections_from_clip(state_dict: StateDict,
                          source: str = '<state dict>') -> Projections:
    """The projections of an OpenAI CLIP state dict, in the reference's layout."""
    if 'visual.proj' in state_dict:
        return {'proj': {'weight': state_dict['visual.proj'].t().contiguous()}}
    projs = {}
    for name in RESNET_PROJECTIONS:
        entry = {}
        for part in ('weight', 'bias'):
            key = f'visual.attnpool.{name}.{part}'
            if key not in state_dict:
                raise CLIPCheckpointError(
                    f'{source} has neither visual.proj (ViT) nor {key} '
                    f"(ResNet attention pool): it holds no CLIP image tower's "
                    f'output projections')
            entry[part] = state_dict[key]
        projs[name] = entry
    return projs


def read_projections(path: str) -> Projections:
    """Read a visual-projection file of the reference's format."""
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'visual projection file {path} does not exist; write it with '
            f'`python tools/convert_clip_weights.py pretrained/<model>.pt`, or '
            f'give the OpenAI CLIP file as clip_pretrained instead') from None
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise CLIPCheckpointError(
            f'{path} is not a visual projection file ({type(err).__name__}: '
            f'{err})') from err
    if not isinstance(loaded, dict) or not any(
            isinstance(loaded.get(n), dict)
            for n in ('proj', ) + RESNET_PROJECTIONS):
        keys = list(loaded) if isinstance(loaded, dict) else type(loaded)
        raise CLIPCheckpointError(
            f'{path} is not a visual projection file: expected a dict with '
            f"'proj' (ViT) or 'q_proj'/'k_proj'/'v_proj'/'c_proj' (ResNet) "
            f'entries of {{weight, bias}}, got {keys}')
    return {
        name: {k: v.float() for k, v in entry.items()}
        for name, entry in loaded.items()
        if name != 'clip' and isinstance(entry, dict)
    }
