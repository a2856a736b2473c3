"""Reading OpenAI CLIP files into our CLIP towers.

OpenAI distributes CLIP as TorchScript archives (``RN50.pt``, ``ViT-B-16.pt``
...); fine-tuned copies often come as plain state dicts. Both are read here,
split into the image tower (keys ``visual.*``, loaded with the prefix removed)
and the text tower (``transformer.*``, ``token_embedding.weight``,
``positional_embedding``, ``ln_final.*``, ``text_projection``, loaded
unchanged), adapted to the module (positional embeddings resized or cut) and
checked: a missing tensor, a tensor of another shape or a key that belongs to
another architecture is an error naming the file, the key and the shapes.

A TorchScript archive also records each tower's number of attention heads
(:func:`clip_file_heads`), which no tensor shape tells; a tower built with
another count is an error naming both counts and the file.
"""
import functools
import os
import os.path as osp
import re
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

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


# the attention modules of an OpenAI CLIP model, by tower: the blocks of each
# transformer (nn.MultiheadAttention) and a ResNet's attention pool
_ATTENTION_MODULES = {
    'visual': re.compile(r'visual\.(transformer\.resblocks\.\d+\.attn|attnpool)$'),
    'text': re.compile(r'transformer\.resblocks\.\d+\.attn$'),
}
_DIVISIONS = ('aten::div', 'aten::floor_divide')


def _constant_int(value) -> Optional[int]:
    """``value`` as a positive int if it is one (an int or an integer
    scalar tensor), else None."""
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.is_floating_point():
            return None
        value = int(value.item())
    return value if isinstance(value, int) and value > 0 else None


def scripted_attention_heads(module) -> Optional[int]:
    """The number of heads a scripted or traced attention module runs.

    A scripted ``nn.MultiheadAttention`` keeps its ``num_heads`` attribute.
    A traced one (OpenAI's archives, made with ``torch.jit.trace``) keeps
    only its code, where PyTorch's ``multi_head_attention_forward`` computes
    ``head_dim = embed_dim // num_heads`` from the input's size: the divisor
    is a constant of the graph (``CONSTANTS.c0`` in the archive's code:
    ``floor_divide`` as torch 1.7 traced OpenAI's files, ``div`` with
    ``rounding_mode='trunc'`` as torch 2 traces). None when neither is
    found, or the graph holds two such divisors.
    """
    heads = _constant_int(getattr(module, 'num_heads', None))
    if heads is not None:
        return heads
    try:
        nodes = list(module.graph.nodes())
    except (AttributeError, RuntimeError):
        return None
    found = set()
    for node in nodes:
        if node.kind() not in _DIVISIONS:
            continue
        dividend, divisor = list(node.inputs())[:2]
        source = dividend.node()
        if source.kind() != 'prim::NumToTensor' or \
                next(source.inputs()).node().kind() != 'aten::size' or \
                divisor.node().kind() != 'prim::Constant':
            continue
        value = _constant_int(divisor.toIValue())
        if value is not None:
            found.add(value)
    return found.pop() if len(found) == 1 else None


def _recorded_heads(model, path: str) -> Dict[str, int]:
    """``{tower: heads}`` that the attention modules of a loaded TorchScript
    CLIP record (towers whose count cannot be read are left out)."""
    counts: Dict[str, set] = {tower: set() for tower in _ATTENTION_MODULES}
    for name, module in model.named_modules():
        for tower, pattern in _ATTENTION_MODULES.items():
            if pattern.match(name):
                heads = scripted_attention_heads(module)
                if heads is not None:
                    counts[tower].add(heads)
                break
    for tower, found in counts.items():
        if len(found) > 1:
            raise CLIPCheckpointError(
                f'{path}: the attention blocks of its {tower} tower have '
                f'different head counts ({", ".join(map(str, sorted(found)))})'
                f'; a CLIP tower here has one count for all its blocks')
    return {tower: found.pop() for tower, found in counts.items() if found}


class _ClipFile(NamedTuple):
    state_dict: StateDict
    # {'visual': n, 'text': m}: the counts the file records (none for a
    # plain state dict)
    heads: Dict[str, int]


@functools.lru_cache(maxsize=1)
def _read_checkpoint(path: str, mtime_ns: int, size: int) -> _ClipFile:
    del mtime_ns, size  # part of the cache key only
    heads: Dict[str, int] = {}
    try:
        if _is_torchscript_archive(path):
            model = torch.jit.load(path, map_location='cpu')
            state_dict = model.state_dict()
            heads = _recorded_heads(model, path)
            del model
        else:
            state_dict = torch.load(path, map_location='cpu', weights_only=True)
    except CLIPCheckpointError:
        raise
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
    return _ClipFile({
        k: v.float() if v.is_floating_point() else v
        for k, v in state_dict.items()
    }, heads)


def _read_clip_file(path: str) -> _ClipFile:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP checkpoint {path} does not exist. {_download_hint(path)}')
    stat = os.stat(path)
    return _read_checkpoint(osp.realpath(path), stat.st_mtime_ns, stat.st_size)


def load_clip_checkpoint(path: str) -> StateDict:
    """Read an OpenAI CLIP file: a TorchScript archive or a plain state dict.

    Floating-point tensors are returned as float32 (OpenAI's archives are fp16).
    The last file read is cached, so a segmentor whose towers share one file
    reads it once.
    """
    return _read_clip_file(path).state_dict


def clip_file_heads(path: str) -> Dict[str, int]:
    """The attention heads per tower (``'visual'``, ``'text'``) that a CLIP
    file records: a TorchScript archive holds them in its code (see
    :func:`scripted_attention_heads`); a plain state dict holds none (``{}``:
    OpenAI's rule, one head per 64 channels, is then all there is)."""
    return dict(_read_clip_file(path).heads)


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


def module_attention_heads(module: nn.Module) -> Optional[int]:
    """The heads of a CLIP tower module: its transformer's
    (``nn.MultiheadAttention``) or its attention pool's; None if it has
    neither."""
    for sub in module.modules():
        if isinstance(sub, nn.MultiheadAttention):
            return sub.num_heads
    return _constant_int(getattr(getattr(module, 'attnpool', None),
                                 'num_heads', None))


def check_attention_heads(module: nn.Module, recorded: Optional[int],
                          tower: str, source: str) -> None:
    """Raise if ``module`` runs another number of attention heads than the
    CLIP file ``source`` records for ``tower`` (None: it records none).

    Every shape of the weights is the same for any head count, so they
    would load and give other features, silently.
    """
    built = module_attention_heads(module)
    if recorded is None or built is None or built == recorded:
        return
    name = type(module).__name__
    key = getattr(module, 'heads_arg', None)
    if key:
        fix = (f'build it with {key}={recorded}, or leave {key} out where '
               f'the config is read from the file')
        built_as = f'{built} ({key}={built})'
    else:
        fix = 'it is not the architecture this module builds'
        built_as = str(built)
    raise CLIPCheckpointError(
        f'{source} records {recorded} attention '
        f'head{"s" if recorded != 1 else ""} in its {tower} tower, '
        f'but {name} was built with {built_as}: the weights fit either way '
        f'and would compute other features. {fix[0].upper()}{fix[1:]}.')


def load_clip_tower(module: nn.Module,
                    checkpoint: Union[str, StateDict],
                    tower: str,
                    source: str = '<state dict>') -> LoadReport:
    """Load one tower of a CLIP file into ``module`` and report key by key.

    Given as a path, the file's recorded head count (a TorchScript archive)
    is checked against the module's (:func:`check_attention_heads`).
    ``module`` may define ``adapt_clip_state_dict(state_dict) -> list`` (resize
    or cut tensors in place, return the keys it changed), ``is_clip_key(key)``
    (False for its own keys that CLIP does not have) and
    ``uses_clip_key(key)`` (False for CLIP keys it deliberately leaves out).

    Raises:
        CLIPCheckpointError: a required key is missing, a shape differs, the
            file holds keys of another architecture, or it records another
            number of attention heads than the module has.
    """
    if tower not in ('visual', 'text'):
        raise ValueError(f"tower must be 'visual' or 'text', got {tower!r}")
    name = type(module).__name__
    recorded_heads = None
    if isinstance(checkpoint, str):
        source = checkpoint
        recorded_heads = clip_file_heads(checkpoint).get(tower)
        checkpoint = load_clip_checkpoint(checkpoint)
    visual, text = split_clip_state_dict(checkpoint)
    state_dict = dict(visual if tower == 'visual' else text)
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
    # last: a file of another architecture is named by its keys and shapes
    check_attention_heads(module, recorded_heads, tower, source)
    module.load_state_dict(to_load, strict=False)
    print_log(str(report), logger='current')
    return report
