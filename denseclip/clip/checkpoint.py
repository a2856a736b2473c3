"""Reading CLIP files, in any of three layouts, into our CLIP towers.

OpenAI distributes CLIP as TorchScript archives (``RN50.pt``, ``ViT-B-16.pt``
...); fine-tuned copies often come as plain state dicts. open_clip's files
(``.bin``, ``.pt`` with or without a ``state_dict`` key, ``.safetensors``:
:mod:`~denseclip.clip.open_clip_layout`) and transformers' ``CLIPModel``
folders (``config.json`` with ``model.safetensors`` or ``pytorch_model.bin``:
:mod:`~denseclip.clip.transformers_layout`) are renamed to OpenAI's layout on
reading (:func:`read_clip_file` tells which layout a file is), so all that
follows sees one layout. The state dict is split into the image tower
(keys ``visual.*``, loaded with the prefix removed) and the text tower (``transformer.*``, ``token_embedding.weight``,
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

from . import open_clip_layout, transformers_layout
from .activation import QUICK_GELU, resolve_activation
from .files import CLIP_FILES

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


OPENAI = 'openai'
OPEN_CLIP = 'open_clip'
TRANSFORMERS = 'transformers'
LAYOUT_NAMES = {OPENAI: "OpenAI's", OPEN_CLIP: "open_clip's",
                TRANSFORMERS: "transformers' CLIPModel"}


class ClipFileInfo(NamedTuple):
    """A CLIP file read and renamed to OpenAI's layout."""
    state_dict: StateDict
    # {'visual': n, 'text': m}: the counts the file records (none for a
    # plain state dict)
    heads: Dict[str, int]
    layout: str  # OPENAI, OPEN_CLIP or TRANSFORMERS
    weights: str  # the file the tensors came from (in a folder: its weights)
    # {tower: activation} the file states, and where it says so
    activations: Dict[str, str] = {}
    activation_evidence: str = ''
    # keys of the file that have no OpenAI name, by tower
    unmapped: Dict[str, List[str]] = {}


def _locate(path: str) -> Tuple[str, Optional[str]]:
    """``(weights file, layout its name says or None)`` of a file or a folder."""
    if osp.isdir(path):
        for layout, names in ((TRANSFORMERS, transformers_layout.WEIGHT_FILES),
                              (OPEN_CLIP, open_clip_layout.WEIGHT_FILES)):
            for name in names:
                if osp.isfile(osp.join(path, name)):
                    return osp.join(path, name), layout
        raise FileNotFoundError(
            f'{path} is a folder without CLIP weights: expected a '
            f'transformers CLIPModel folder ({transformers_layout.CONFIG_FILE}'
            f' and {" or ".join(transformers_layout.WEIGHT_FILES)}) or an '
            f'open_clip one ({" or ".join(open_clip_layout.WEIGHT_FILES)}). '
            f'Give the weights file or the folder that holds them')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP checkpoint {path} does not exist. {_download_hint(path)}')
    name = osp.basename(path)
    if name in transformers_layout.WEIGHT_FILES:
        return path, TRANSFORMERS
    if name in open_clip_layout.WEIGHT_FILES:
        return path, OPEN_CLIP
    if any(name == f.filename for f in CLIP_FILES.values()):
        return path, OPENAI
    return path, None


def _load_weights(path: str) -> Tuple[object, Dict[str, int], bool]:
    """``(what the file holds, heads a TorchScript archive records,
    whether it is one)``."""
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            return load_file(path, device='cpu'), {}, False
        if _is_torchscript_archive(path):
            model = torch.jit.load(path, map_location='cpu')
            state_dict = model.state_dict()
            heads = _recorded_heads(model, path)
            del model
            return state_dict, heads, True
        return torch.load(path, map_location='cpu', weights_only=True), {}, \
            False
    except CLIPCheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        kind = ('not a safetensors file that the safetensors package can '
                'read' if path.endswith('.safetensors') else
                'neither a TorchScript archive nor a state dict that '
                'torch.load can read')
        raise CLIPCheckpointError(
            f'{path} is not a CLIP checkpoint: it is {kind} '
            f'({type(err).__name__}: {err})') from err


def _tower_of(key: str) -> Optional[str]:
    """The tower an unmapped key belongs to (None: the whole model's)."""
    key = key[len('module.'):] if key.startswith('module.') else key
    if key.startswith(('visual', 'vision_model.')):
        return 'visual'
    if key.startswith(('text', 'transformer.', 'token_embedding',
                       'positional_embedding', 'ln_final')):
        return 'text'
    return None


def _to_openai_layout(state_dict: StateDict, weights: str,
                      named: Optional[str], is_script: bool,
                      heads: Dict[str, int]) -> ClipFileInfo:
    """Detect the layout from the keys, check it against the file's name and
    rename the tensors to OpenAI's."""
    hf_config = transformers_layout.config_beside(weights)
    if transformers_layout.has_transformers_keys(state_dict):
        if named in (OPENAI, OPEN_CLIP):
            raise CLIPCheckpointError(
                f'{weights} is named as {LAYOUT_NAMES[named]} file but holds '
                f"transformers' CLIPModel keys (vision_model.*, text_model.*): "
                f'save it as {transformers_layout.WEIGHT_FILES[0]} (or '
                f'{transformers_layout.WEIGHT_FILES[1]}) in a folder with its '
                f'{transformers_layout.CONFIG_FILE} and give that folder')
        if hf_config is None:
            raise CLIPCheckpointError(
                f"{weights} holds transformers' CLIPModel keys but its folder "
                f'has no {transformers_layout.CONFIG_FILE}, which records the '
                f'attention heads and the activation (hidden_act) that the '
                f'tensors do not tell: put the config.json of the same model '
                f'(from its hub repository or CLIPModel.save_pretrained) beside '
                f'it')
        try:
            config = transformers_layout.read_config(hf_config)
            activations = transformers_layout.tower_activations(
                config, hf_config)
        except ValueError as err:
            raise CLIPCheckpointError(str(err)) from err
        mapped, unmapped = transformers_layout.to_openai_layout(state_dict)
        acts = ', '.join(f'{t} {a}' for t, a in activations.items())
        return ClipFileInfo(
            mapped, transformers_layout.tower_heads(config), TRANSFORMERS,
            weights, activations,
            f'{osp.basename(hf_config)} says hidden_act: {acts}', _by_tower(unmapped))
    if named == TRANSFORMERS and hf_config is not None:
        raise CLIPCheckpointError(
            f"{weights} is named as transformers' CLIPModel weights (and has "
            f'{hf_config} beside it) but holds no vision_model.* / '
            f'text_model.* keys: it looks like an OpenAI or open_clip state '
            f'dict. Rename it (e.g. {open_clip_layout.WEIGHT_FILES[1]}) or '
            f'give the CLIPModel weights')
    trunk = open_clip_layout.timm_trunk_keys(state_dict)
    if trunk:
        raise CLIPCheckpointError(
            f'{weights} holds an image tower built by timm ({trunk[0]!r} ...'
            f"), not CLIP's ViT or ResNet; use an open_clip file whose model "
            f'has no timm_model_name, or the OpenAI or transformers file of '
            f'the same weights')
    if is_script:
        return ClipFileInfo(
            state_dict, heads, OPENAI, weights,
            {'visual': QUICK_GELU, 'text': QUICK_GELU},
            "an OpenAI TorchScript archive: OpenAI's CLIPs run QuickGELU")
    if named != OPEN_CLIP and not open_clip_layout.has_open_clip_keys(
            state_dict):
        return ClipFileInfo(state_dict, heads, OPENAI, weights)
    mapped, unmapped = open_clip_layout.to_openai_layout(state_dict)
    info = ClipFileInfo(mapped, {}, OPEN_CLIP, weights,
                        unmapped=_by_tower(unmapped))
    oc_config = open_clip_layout.config_beside(weights)
    if oc_config is None:
        return info
    try:
        model_cfg = open_clip_layout.read_model_cfg(oc_config)
    except ValueError as err:
        raise CLIPCheckpointError(str(err)) from err
    act = open_clip_layout.tower_activation(model_cfg)
    said = ('quick_gelu: true' if model_cfg.get('quick_gelu') else
            'no quick_gelu (open_clip runs GELU)')
    return info._replace(
        heads=open_clip_layout.tower_heads(model_cfg),
        activations={'visual': act, 'text': act},
        activation_evidence=f'{osp.basename(oc_config)} says {said}')


def _by_tower(keys: List[str]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for key in keys:
        found.setdefault(_tower_of(key) or 'model', []).append(key)
    return found


@functools.lru_cache(maxsize=1)
def _read_checkpoint(path: str, weights: str, named: Optional[str],
                     stamp: Tuple[int, ...]) -> ClipFileInfo:
    del path, stamp  # part of the cache key only
    loaded, heads, is_script = _load_weights(weights)
    if isinstance(loaded, dict) and isinstance(loaded.get('state_dict'),
                                               dict):
        loaded = loaded['state_dict']
    if not isinstance(loaded, dict) or not all(
            isinstance(v, Tensor) for v in loaded.values()):
        raise CLIPCheckpointError(
            f'{weights} is not a CLIP checkpoint: expected a mapping of names '
            f'to tensors (optionally under "state_dict"), got '
            f'{type(loaded).__name__}')
    state_dict = {
        k: v.float() if v.is_floating_point() else v
        for k, v in loaded.items()
    }
    return _to_openai_layout(state_dict, weights, named, is_script, heads)


def read_clip_file(path: str) -> ClipFileInfo:
    """Read a CLIP file or folder in any layout (cached: the last one read).

    ``path``: an OpenAI file, an open_clip file, a transformers
    ``CLIPModel`` folder, or the weights file in one.
    """
    weights, named = _locate(path)
    stamp: Tuple[int, ...] = ()
    for file in (weights, transformers_layout.config_beside(weights),
                 open_clip_layout.config_beside(weights)):
        if file is not None:
            stat = os.stat(file)
            stamp += (stat.st_mtime_ns, stat.st_size)
    return _read_checkpoint(osp.realpath(path), osp.realpath(weights), named,
                            stamp)


def load_clip_checkpoint(path: str) -> StateDict:
    """Read a CLIP file (any layout: :func:`read_clip_file`) as an OpenAI-layout
    state dict.

    Floating-point tensors are returned as float32 (OpenAI's archives are fp16).
    The last file read is cached, so a segmentor whose towers share one file
    reads it once.
    """
    return read_clip_file(path).state_dict


def clip_file_heads(path: str) -> Dict[str, int]:
    """The attention heads per tower (``'visual'``, ``'text'``) that a CLIP
    file records: a TorchScript archive holds them in its code (see
    :func:`scripted_attention_heads`); a plain state dict holds none (``{}``:
    OpenAI's rule, one head per 64 channels, is then all there is)."""
    return dict(read_clip_file(path).heads)


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
    layout: str = ''  # OPENAI, OPEN_CLIP or TRANSFORMERS ('' for a state dict)
    # the activation the module runs and where it came from (empty for a
    # module without one, e.g. a ResNet image tower)
    activation: str = ''

    def __str__(self) -> str:
        layout = f' ({LAYOUT_NAMES[self.layout]} layout)' if self.layout \
            else ''
        lines = [f'loaded {len(self.loaded)} tensors from {self.checkpoint}'
                 f'{layout} into {self.module}']
        if self.activation:
            lines.append(f'  activation: {self.activation}')
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
    A module with an ``activation_arg`` (the name of its ``activation``
    option) gets the activation :func:`~denseclip.clip.activation.
    resolve_activation` finds, through its ``use_activation(name)``.

    Raises:
        CLIPCheckpointError: a required key is missing, a shape differs, the
            file holds keys of another architecture, it records another
            number of attention heads than the module has, or it states
            another activation than the module's option asks for.
    """
    if tower not in ('visual', 'text'):
        raise ValueError(f"tower must be 'visual' or 'text', got {tower!r}")
    name = type(module).__name__
    info = None
    if isinstance(checkpoint, str):
        source = checkpoint
        info = read_clip_file(checkpoint)
        checkpoint = info.state_dict
    recorded_heads = info.heads.get(tower) if info else None
    visual, text = split_clip_state_dict(checkpoint)
    state_dict = dict(visual if tower == 'visual' else text)
    if not state_dict:
        raise CLIPCheckpointError(
            f'{source} holds no {tower} tower keys '
            f'({"visual.*" if tower == "visual" else "transformer.*, token_embedding.weight, ..."}); '
            f'is it a CLIP checkpoint?')

    report = LoadReport(checkpoint=source, module=name,
                        layout=info.layout if info else '')
    report.unexpected += info.unmapped.get(tower, []) if info else []
    if getattr(module, 'activation_arg', None):
        try:
            resolved = resolve_activation(
                module.activation,
                info.activations.get(tower) if info else None,
                info.activation_evidence if info else '',
                source if info else None, module.activation_arg)
        except ValueError as err:
            raise CLIPCheckpointError(str(err)) from err
        module.use_activation(resolved.name)
        report.activation = resolved.describe()
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
        shape = (f'shape {tuple(state_dict[key].shape)}' if key in state_dict
                 else f'no OpenAI name in the {LAYOUT_NAMES[info.layout]} '
                 f'layout')
        raise CLIPCheckpointError(
            f'{source} does not fit {name}: it holds {len(report.unexpected)} '
            f'{tower} tensor(s) the model does not have, first {key!r} '
            f'({shape}). Is it the CLIP file of '
            f'another architecture (depth or width)? unexpected: '
            f'{", ".join(report.unexpected)}')
    # last: a file of another architecture is named by its keys and shapes
    check_attention_heads(module, recorded_heads, tower, source)
    module.load_state_dict(to_load, strict=False)
    print_log(str(report), logger='current')
    return report
