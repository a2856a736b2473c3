"""Reading VFM files (DINO, DINOv2) into :class:`VisionFoundationModel`.

A file is a ``.safetensors`` file (read with ``safetensors.torch.load_file``)
or anything ``torch.load(weights_only=True)`` reads (``.pth``, ``.bin``), or a
transformers folder (``config.json`` with ``model.safetensors`` or
``pytorch_model.bin``). Its keys are renamed to ours by
:mod:`denseclip.vfm.layouts` and checked against the module: a key the
layouts do not know, a missing tensor, a tensor of another shape or one the
module has no place for is an error naming the file, the key and the shapes.
transformers' ``config.json`` also says the attention heads (no tensor
shape tells them), checked against the module's.

The last file read is cached (a VFM of ViT-B is 350 MB; the architecture is
read from it at construction and its tensors again on ``init_weights``).
"""
import functools
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from . import layouts
from .files import (DOWNLOAD_TOOL, TIMM, TRANSFORMERS, TRANSFORMERS_CONFIG,
                    TRANSFORMERS_WEIGHTS, vfm_file_for, vfm_names)
from .vit import LAYER_NORM_EPS

StateDict = Dict[str, Tensor]
LAYOUT_NAMES = {TIMM: "DINO's / timm's", TRANSFORMERS: "transformers'"}
# transformers model types whose files this module reads
MODEL_TYPES = ('vit', 'dinov2', 'dinov2_with_registers')


class VFMCheckpointError(RuntimeError):
    """A VFM file that cannot be read, or does not fit the module."""


class VFMFileInfo(NamedTuple):
    """A VFM file read and renamed to our layout."""
    state_dict: StateDict
    layout: str  # TIMM | TRANSFORMERS
    weights: str  # the file the tensors came from
    config: Optional[dict] = None  # transformers' config.json
    unused: Tuple[str, ...] = ()  # known keys left out by design
    unmapped: Tuple[str, ...] = ()  # keys of no DINO / DINOv2 ViT
    notes: Tuple[str, ...] = ()  # what was changed on reading


def locate(path: str) -> Tuple[str, Optional[str]]:
    """``(weights file, config.json or None)`` of a file or a folder."""
    if osp.isdir(path):
        config = osp.join(path, TRANSFORMERS_CONFIG)
        for name in TRANSFORMERS_WEIGHTS:
            if osp.isfile(osp.join(path, name)):
                return (osp.join(path, name),
                        config if osp.isfile(config) else None)
        raise FileNotFoundError(
            f'{path} is a folder without VFM weights: expected a transformers '
            f'folder ({TRANSFORMERS_CONFIG} and '
            f'{" or ".join(TRANSFORMERS_WEIGHTS)}); give the weights file or '
            f'the folder that holds them')
    config = osp.join(osp.dirname(path), TRANSFORMERS_CONFIG)
    if osp.basename(path) in TRANSFORMERS_WEIGHTS and osp.isfile(config):
        return path, config
    return path, None


def _load(path: str) -> object:
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            return load_file(path, device='cpu')
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        if path.endswith('.safetensors'):
            kind = 'not a safetensors file the safetensors package can read'
        else:
            kind = ('not a state dict that torch.load(weights_only=True) '
                    'reads (a training checkpoint that pickles its '
                    "arguments, as DINO's *_full_checkpoint.pth does, must "
                    "be reduced to its 'teacher' weights first)")
        raise VFMCheckpointError(
            f'{path} is not a VFM checkpoint: it is {kind} '
            f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})'
        ) from err


def _what_it_is(keys: List[str]) -> str:
    """A guess at what a file that is no DINO / DINOv2 ViT holds."""
    if any(k.startswith(('visual.', 'vision_model.', 'text_model.',
                         'positional_embedding', 'token_embedding'))
           for k in keys):
        return ('it looks like a CLIP file (visual.* / vision_model.* / '
                'text_model.* keys): give it to the CLIP tower, and give '
                'the VFM DINO or DINOv2 weights')
    if 'conv1.weight' in keys and any(k.startswith('layer1.') for k in keys):
        return 'it looks like a ResNet (conv1, layer1.*), not a ViT'
    shown = ', '.join(repr(k) for k in keys[:4])
    return f'its first keys are {shown}'


def _check_config(config: dict, path: str) -> None:
    model_type = config.get('model_type')
    if model_type not in MODEL_TYPES:
        what = (' (a CLIP model: give it to the CLIP tower)'
                if 'clip' in str(model_type) else '')
        raise VFMCheckpointError(
            f'{path} says model_type {model_type!r}{what}; the VFM reads '
            f'transformers folders of {", ".join(MODEL_TYPES)} (DINO: '
            f'facebook/dino-vit*, DINOv2: facebook/dinov2-with-registers-*)')
    wrong = []
    if config.get('hidden_act', 'gelu') != 'gelu':
        wrong.append(f"hidden_act {config['hidden_act']!r} (DINO runs 'gelu')")
    if not config.get('qkv_bias', True):
        wrong.append('qkv_bias false')
    if config.get('use_swiglu_ffn', False):
        wrong.append('use_swiglu_ffn true (DINOv2 ViT-g; not built here)')
    if wrong:
        raise VFMCheckpointError(
            f'{path} describes a ViT this module does not build: '
            f'{"; ".join(wrong)}')


def to_our_layout(loaded: object, source: str,
                  config: Optional[dict] = None) -> VFMFileInfo:
    """Rename what a VFM file holds (a state dict, possibly nested in a
    training checkpoint) to our layout; ``source`` names it in messages."""
    if isinstance(loaded, dict):
        loaded = layouts.unwrap(loaded)
    if not isinstance(loaded, dict) or not loaded or not all(
            isinstance(k, str) and isinstance(v, Tensor)
            for k, v in loaded.items()):
        raise VFMCheckpointError(
            f'{source} is not a VFM checkpoint: expected a mapping of names '
            f'to tensors (optionally under teacher / state_dict / model), '
            f'got {type(loaded).__name__}')
    state_dict = layouts.strip_prefixes({
        k: v.float() if v.is_floating_point() else v for k, v in loaded.items()
    })
    if layouts.is_transformers(state_dict):
        layout = TRANSFORMERS
        mapped, unused, unmapped, notes = layouts.from_transformers(state_dict)
    elif layouts.is_timm(state_dict):
        if config is not None:
            raise VFMCheckpointError(
                f'{source} holds DINO\'s / timm\'s keys (cls_token, '
                f'patch_embed.proj.*) but lies in a transformers folder '
                f'beside a {TRANSFORMERS_CONFIG}: rename it (e.g. '
                f'<name>.safetensors) or give the transformers weights')
        layout = TIMM
        mapped, unused, unmapped, notes = layouts.from_timm(state_dict)
    else:
        raise VFMCheckpointError(
            f'{source} is not a ViT of the DINO / DINOv2 kind: '
            f'{_what_it_is(sorted(state_dict))}. Give DINO or DINOv2 '
            f'weights (`python {DOWNLOAD_TOOL} --list`: '
            f'{", ".join(vfm_names())})')
    return VFMFileInfo(mapped, layout, source, config, tuple(unused),
                       tuple(unmapped), tuple(notes))


@functools.lru_cache(maxsize=1)
def _read(weights: str, config_path: Optional[str],
          stamp: Tuple[int, ...]) -> VFMFileInfo:
    del stamp  # part of the cache key only
    config = None
    if config_path is not None:
        try:
            with open(config_path) as f:
                config = json.load(f)
        except (OSError, ValueError) as err:
            raise VFMCheckpointError(
                f'{config_path} is not a readable JSON file: {err}') from err
        _check_config(config, config_path)
    return to_our_layout(_load(weights), weights, config)


def read_vfm_file(path: str) -> VFMFileInfo:
    """Read a VFM file or transformers folder, or the file of a table name
    (:func:`~denseclip.vfm.files.find_vfm_file`), in our layout (cached:
    the last one read). Raises :class:`FileNotFoundError` naming the
    download command when it is missing."""
    weights, config = locate(vfm_file_for(path))
    stamp: Tuple[int, ...] = ()
    for file in (weights, config):
        if file is not None:
            stat = os.stat(file)
            stamp += (stat.st_mtime_ns, stat.st_size)
    return _read(osp.realpath(weights),
                 osp.realpath(config) if config else None, stamp)


@dataclass
class VFMLoadReport:
    """What loading a VFM file into a module did, key by key."""

    checkpoint: str
    module: str
    layout: str = ''
    loaded: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)  # in the file, by design
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        layout = (f' ({LAYOUT_NAMES[self.layout]} layout)'
                  if self.layout in LAYOUT_NAMES else '')
        lines = [f'loaded {len(self.loaded)} tensors from {self.checkpoint}'
                 f'{layout} into {self.module}']
        lines += [f'  note: {n}' for n in self.notes]
        for title, keys in (('in the file, not used by this module',
                             self.unused), ('missing', self.missing),
                            ('unexpected', self.unexpected)):
            lines.append(f'  {title} ({len(keys)}): '
                         f'{", ".join(keys) if keys else "none"}')
        return '\n'.join(lines)


def _file_arch(info: VFMFileInfo) -> str:
    from .arch import arch_from_state_dict  # arch reads files through here
    try:
        return repr(arch_from_state_dict(info.state_dict, info.config))
    except (KeyError, ValueError, IndexError):
        return 'not readable'


def load_vfm_weights(module: nn.Module,
                     checkpoint: Union[str, VFMFileInfo]) -> VFMLoadReport:
    """Load a VFM file (a path, a table name, or a :class:`VFMFileInfo`)
    into ``module`` (our layout; ``module.heads`` its attention heads) and
    report what was loaded.

    Raises:
        VFMCheckpointError: keys no layout knows, a tensor of another
            shape, a tensor missing, a tensor the module has no place for,
            or another number of heads than ``config.json`` says.
    """
    info = checkpoint if isinstance(checkpoint, VFMFileInfo) else \
        read_vfm_file(checkpoint)
    source = info.weights
    name = type(module).__name__
    if info.unmapped:
        raise VFMCheckpointError(
            f'{source} holds {len(info.unmapped)} key(s) of no DINO / DINOv2 '
            f'ViT in {LAYOUT_NAMES[info.layout]} layout, first '
            f'{info.unmapped[0]!r}: is it another kind of model (SwiGLU '
            f'MLP, ViT-g chunks, a classifier)? unmapped: '
            f'{", ".join(info.unmapped)}')
    report = VFMLoadReport(checkpoint=source, module=name, layout=info.layout,
                           unused=list(info.unused), notes=list(info.notes))
    state_dict = info.state_dict
    own = module.state_dict()
    for key, target in own.items():
        value = state_dict.get(key)
        if value is None:
            report.missing.append(key)
        elif value.shape != target.shape:
            raise VFMCheckpointError(
                f'{source} does not fit {name}: key {key!r} has shape '
                f'{tuple(value.shape)} in the file but {tuple(target.shape)} '
                f'in the model. The file is {_file_arch(info)}; build the '
                f'module with those values (or give only pretrained= and '
                f'let them be read from the file).')
        else:
            report.loaded.append(key)
    report.unexpected = [k for k in state_dict if k not in own]
    if report.missing:
        raise VFMCheckpointError(
            f'{source} lacks {len(report.missing)} tensor(s) that {name} '
            f'needs, first {report.missing[0]!r} (shape '
            f'{tuple(own[report.missing[0]].shape)}): the file is '
            f'{_file_arch(info)}. missing: {", ".join(report.missing)}')
    if report.unexpected:
        raise VFMCheckpointError(
            f'{source} does not fit {name}: it holds '
            f'{len(report.unexpected)} tensor(s) the model has no place for, '
            f'first {report.unexpected[0]!r} (shape '
            f'{tuple(state_dict[report.unexpected[0]].shape)}): the file is '
            f'{_file_arch(info)}. unexpected: {", ".join(report.unexpected)}')
    config = info.config or {}
    heads = config.get('num_attention_heads')
    if heads is not None and heads != getattr(module, 'heads', heads):
        raise VFMCheckpointError(
            f'{source}: its {TRANSFORMERS_CONFIG} says {heads} attention '
            f'heads but {name} was built with heads={module.heads}: the '
            f'weights fit either way and would compute other features. '
            f'Build it with heads={heads}, or leave heads out.')
    eps = config.get('layer_norm_eps')
    if eps is not None and eps != LAYER_NORM_EPS:
        report.notes.append(
            f'{TRANSFORMERS_CONFIG} says layer_norm_eps {eps}; this module '
            f"runs DINO's {LAYER_NORM_EPS} (transformers' ViTConfig default "
            f'is 1e-12)')
    module.load_state_dict({k: state_dict[k] for k in own}, strict=True)
    print_log(str(report), logger='current')
    return report
