"""The architecture of an OpenAI CLIP file, read from its tensors.

A CLIP file holds no configuration, only tensors; their shapes and names tell
the architecture, as OpenAI's own ``clip.model.build_model`` reads them. What
the tensors cannot tell is the number of attention heads: OpenAI's rule is one
head per 64 channels (``width // 64``), which every released model follows;
pass ``overrides`` for a model that does not (the tiny test models of
:mod:`denseclip.toy.clip_model` have 32- or 64-wide text towers with 4 heads).
"""
from typing import Dict, Optional

from torch import Tensor

from ..clip_io import CLIPCheckpointError, load_clip_checkpoint

StateDict = Dict[str, Tensor]


def _count(state_dict: StateDict, prefix: str) -> int:
    """Number of distinct ``<prefix><i>.`` indices among the keys."""
    return len({
        k[len(prefix):].split('.')[0]
        for k in state_dict if k.startswith(prefix)
    })


def _require(state_dict: StateDict, key: str, source: str) -> Tensor:
    if key not in state_dict:
        raise CLIPCheckpointError(
            f'{source} is not a whole OpenAI CLIP model: it has no {key!r}')
    return state_dict[key]


def is_vit(state_dict: StateDict) -> bool:
    """Whether the image tower of a CLIP state dict is a ViT (else a ResNet)."""
    return 'visual.proj' in state_dict


def clip_visual_cfg(state_dict: StateDict,
                    source: str = '<state dict>') -> dict:
    """Backbone config of the image tower: ``CLIPResNet`` or ``CLIPVisionTransformer``.

    The ViT gets no feature pyramid (``out_indices=()``); the ResNet is the
    plain one (four stage maps). Add what your model needs (e.g.
    ``return_value_path=True`` for MaskCLIP).
    """
    if is_vit(state_dict):
        conv1 = _require(state_dict, 'visual.conv1.weight', source)
        width, patch = conv1.shape[0], conv1.shape[-1]
        grid = round((_require(state_dict, 'visual.positional_embedding',
                               source).shape[0] - 1)**0.5)
        return dict(
            type='CLIPVisionTransformer',
            input_resolution=patch * grid,
            patch_size=patch,
            width=width,
            layers=_count(state_dict, 'visual.transformer.resblocks.'),
            heads=max(width // 64, 1),
            output_dim=state_dict['visual.proj'].shape[1],
            out_indices=())
    if 'visual.layer1.0.conv1.weight' not in state_dict:
        raise CLIPCheckpointError(
            f'{source} has neither a ViT (visual.proj) nor a ResNet '
            f'(visual.layer1.*) image tower; is it an OpenAI CLIP file?')
    layers = [_count(state_dict, f'visual.layer{i}.') for i in range(1, 5)]
    pos = _require(state_dict, 'visual.attnpool.positional_embedding', source)
    return dict(
        type='CLIPResNet',
        layers=layers,
        output_dim=_require(state_dict, 'visual.attnpool.c_proj.weight',
                            source).shape[0],
        input_resolution=round((pos.shape[0] - 1)**0.5) * 32,
        width=state_dict['visual.layer1.0.conv1.weight'].shape[0])


def clip_text_cfg(state_dict: StateDict,
                  source: str = '<state dict>',
                  overrides: Optional[dict] = None) -> dict:
    """``CLIPTextTower`` config of the text tower (heads: ``width // 64``)."""
    width = _require(state_dict, 'ln_final.weight', source).shape[0]
    cfg = dict(
        type='CLIPTextTower',
        context_length=_require(state_dict, 'positional_embedding',
                                source).shape[0],
        vocab_size=_require(state_dict, 'token_embedding.weight',
                            source).shape[0],
        transformer_width=width,
        transformer_heads=max(width // 64, 1),
        transformer_layers=_count(state_dict, 'transformer.resblocks.'),
        embed_dim=_require(state_dict, 'text_projection', source).shape[1])
    cfg.update(overrides or {})
    return cfg


def describe(path: str) -> str:
    """One line naming the architecture of a CLIP file (for logs and tools)."""
    state_dict = load_clip_checkpoint(path)
    vis = clip_visual_cfg(state_dict, path)
    txt = clip_text_cfg(state_dict, path)
    if vis['type'] == 'CLIPVisionTransformer':
        image = (f"ViT (patch {vis['patch_size']}, width {vis['width']}, "
                 f"{vis['layers']} layers, {vis['input_resolution']}px)")
    else:
        image = (f"ResNet (layers {vis['layers']}, width {vis['width']}, "
                 f"{vis['input_resolution']}px)")
    return (f'{path}: {image}, embedding {vis["output_dim"]}; text width '
            f'{txt["transformer_width"]}, {txt["transformer_layers"]} layers')
