"""Reading OpenAI CLIP files into our CLIP towers.

OpenAI distributes CLIP as TorchScript archives (``RN50.pt``, ``ViT-B-16.pt``
...); fine-tuned copies often come as plain state dicts. Both are read here,
split into the image tower (keys ``visual.*``, loaded with the prefix removed)
and the text tower (``transformer.*``, ``token_embedding.weight``,
``positional_embedding``, ``ln_final.*``, ``text_projection``, loaded
unchanged), adapted to the module (positional embeddings resized or cut) and
checked: a missing tensor, a tensor of another shape or a key that belongs to
another architecture is an error naming the file, the key and the shapes.
"""
import functools
import os
import os.path as osp
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

StateDict = Dict[str, Tensor]

TEXT_TOWER_KEYS = ('transformer.', 'token_embedding.', 'positional_embedding',
                   'ln_final.', 'text_projection')
# Keys of the whole CLIP model that belong to neither tower.
CLIP_MODEL_KEYS = ('logit_scale', 'input_resolution', 'context_length',
                   'vocab_size')


class CLIPCheckpointError(RuntimeError):
    """A CLIP file cannot be read, or does not fit the module it is loaded into."""


def _download_hint(path: str) -> str:
    name = osp.splitext(osp.basename(path))[0]
    return (f'Download it with `python tools/download_clip.py {name}` '
            '(pretrained/README.md lists the files), or fix the path.')


def _is_torchscript_archive(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    # TorchScript archives hold compiled code next to the pickled data.
    return any('/code/' in n or n.endswith('/constants.pkl') for n in names)


@functools.lru_cache(maxsize=1)
def _read_checkpoint(path: str, mtime_ns: int, size: int) -> StateDict:
    del mtime_ns, size  # part of the cache key only
    try:
        if _is_torchscript_archive(path):
            state_dict = torch.jit.load(path, map_location='cpu').state_dict()
        else:
            state_dict = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise CLIPCheckpointError(
            f'{path} is not a CLIP checkpoint: it is neither a TorchScript '
            f'archive nor a state dict that torch.load can read '
            f'({type(err).__name__}: {err})') from err
    if isinstance(state_dict, dict) and isinstance(
            state_dict.get('state_dict'), dict):
        state_dict = state_dict['state_dict']
    if not isinstance(state_dict, dict) or not all(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise CLIPCheckpointError(
            f'{path} is not a CLIP checkpoint: expected a mapping of names to '
            f'tensors (optionally under "state_dict"), got '
            f'{type(state_dict).__name__}')
    return {
        k: v.float() if v.is_floating_point() else v
        for k, v in state_dict.items()
    }


def load_clip_checkpoint(path: str) -> StateDict:
    """Read an OpenAI CLIP file: a TorchScript archive or a plain state dict.

    Floating-point tensors are returned as float32 (OpenAI's archives are fp16).
    The last file read is cached, so a segmentor whose towers share one file
    reads it once.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP checkpoint {path} does not exist. {_download_hint(path)}')
    stat = os.stat(path)
    return _read_checkpoint(osp.realpath(path), stat.st_mtime_ns, stat.st_size)


def split_clip_state_dict(state_dict: StateDict) -> Tuple[StateDict, StateDict]:
    """Split a whole-CLIP state dict into ``(visual, text)`` tower dicts.

    Visual keys lose their ``visual.`` prefix; text keys are kept unchanged;
    model-level keys (``logit_scale`` ...) are dropped.
    """
    visual, text = {}, {}
    for key, value in state_dict.items():
        if key.startswith('visual.'):
            visual[key[len('visual.'):]] = value
        elif key.startswith(TEXT_TOWER_KEYS):
            text[key] = value
    return visual, text


@dataclass
class LoadReport:
    """What loading a CLIP file into a module did, key by key."""

    checkpoint: str
    module: str
    loaded: List[str] = field(default_factory=list)
    resized: List[str] = field(default_factory=list)
    # module keys that CLIP does not have by design (kept as initialised)
    not_in_clip: List[str] = field(default_factory=list)
    # CLIP keys this module does not use by design (e.g. attnpool for CLIPResNet)
    unused: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f'loaded {len(self.loaded)} tensors from {self.checkpoint} '
                 f'into {self.module}']
        for title, keys in (('resized', self.resized),
                            ('not in CLIP, kept as initialised',
                             self.not_in_clip),
                            ('in CLIP, not used by this module', self.unused),
                            ('missing', self.missing),
                            ('unexpected', self.unexpected)):
            lines.append(f'  {title} ({len(keys)}): '
                         f'{", ".join(keys) if keys else "none"}')
        return '\n'.join(lines)


def load_clip_tower(module: nn.Module,
                    checkpoint: Union[str, StateDict],
                    tower: str,
                    source: str = '<state dict>') -> LoadReport:
    """Load one tower of a CLIP file into ``module`` and report key by key.

    ``module`` may define ``adapt_clip_state_dict(state_dict) -> list`` (resize
    or cut tensors in place, return the keys it changed), ``is_clip_key(key)``
    (False for its own keys that CLIP does not have) and
    ``uses_clip_key(key)`` (False for CLIP keys it deliberately leaves out).

    Raises:
        CLIPCheckpointError: a required key is missing, a shape differs, or the
            file holds keys of another architecture.
    """
    if tower not in ('visual', 'text'):
        raise ValueError(f"tower must be 'visual' or 'text', got {tower!r}")
    if isinstance(checkpoint, str):
        source = checkpoint
        checkpoint = load_clip_checkpoint(checkpoint)
    visual, text = split_clip_state_dict(checkpoint)
    state_dict = dict(visual if tower == 'visual' else text)
    name = type(module).__name__
    if not state_dict:
        raise CLIPCheckpointError(
            f'{source} holds no {tower} tower keys '
            f'({"visual.*" if tower == "visual" else "transformer.*, token_embedding.weight, ..."}); '
            f'is it a CLIP checkpoint?')

    report = LoadReport(checkpoint=source, module=name)
    adapt = getattr(module, 'adapt_clip_state_dict', None)
    if adapt is not None:
        report.resized = list(adapt(state_dict))
    is_clip_key = getattr(module, 'is_clip_key', lambda key: True)
    uses_clip_key = getattr(module, 'uses_clip_key', lambda key: True)

    own = module.state_dict()
    to_load = {}
    for key, target in own.items():
        if key in state_dict:
            value = state_dict[key]
            if value.shape != target.shape:
                raise CLIPCheckpointError(
                    f'{source} does not fit {name}: key {key!r} has shape '
                    f'{tuple(value.shape)} in the checkpoint but '
                    f'{tuple(target.shape)} in the model. Is it the CLIP '
                    f'file of another architecture?')
            to_load[key] = value
            report.loaded.append(key)
        elif key.endswith('num_batches_tracked') or not is_clip_key(key):
            report.not_in_clip.append(key)
        else:
            report.missing.append(key)
    for key in state_dict:
        if key not in own:
            (report.unused if not uses_clip_key(key) else
             report.unexpected).append(key)

    if report.missing:
        raise CLIPCheckpointError(
            f'{source} lacks {len(report.missing)} {tower} tensor(s) that '
            f'{name} needs, first {report.missing[0]!r} (shape '
            f'{tuple(own[report.missing[0]].shape)}); missing: '
            f'{", ".join(report.missing)}')
    if report.unexpected:
        key = report.unexpected[0]
        raise CLIPCheckpointError(
            f'{source} does not fit {name}: it holds {len(report.unexpected)} '
            f'{tower} tensor(s) the model does not have, first {key!r} '
            f'(shape {tuple(state_dict[key].shape)}). Is it the CLIP file of '
            f'another architecture (depth or width)? unexpected: '
            f'{", ".join(report.unexpected)}')
    module.load_state_dict(to_load, strict=False)
    print_log(str(report), logger='current')
    return report
