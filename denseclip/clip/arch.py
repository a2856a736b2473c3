"""The architecture of a CLIP file, read from its tensors, code and config.

The tensors' shapes and names tell most of the architecture, as OpenAI's
own ``clip.model.build_model`` reads them. What they cannot tell is the
number of attention heads: every shape is the same for any count. A
TorchScript archive (OpenAI's ``.pt`` files) records it in its code
(:func:`~denseclip.clip.checkpoint.clip_file_heads`), and :func:`read_clip_arch`
takes it from there; a plain state dict records nothing, and OpenAI's rule
(one head per 64 channels, ``width // 64``, which every released model
follows) is assumed unless a count is given. A given count that differs
from the file's is an error naming both and the file.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor

from .activation import ResolvedActivation, resolve_activation
from .checkpoint import (CLIPCheckpointError, clip_file_heads,
                         load_clip_checkpoint, read_clip_file)

StateDict = Dict[str, Tensor]

# where a tower's head count came from
HEADS_FROM_FILE = 'file'
HEADS_GIVEN = 'given'
HEADS_BY_RULE = 'rule'


def openai_heads(width: int) -> int:
    """OpenAI's rule: one attention head per 64 channels (at least one)."""
    return max(width // 64, 1)


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
                    source: str = '<state dict>',
                    heads: Optional[int] = None) -> dict:
    """Backbone config of the image tower: ``CLIPResNet`` or ``CLIPVisionTransformer``.

    The ViT gets no feature pyramid (``out_indices=()``) and ``heads``
    attention heads (None: ``width // 64``; :func:`read_clip_arch` reads
    them from the file); the ResNet is the plain one (four stage maps).
    Add what your model needs (e.g. ``return_value_path=True`` for MaskCLIP).
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
            heads=heads or openai_heads(width),
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
                  overrides: Optional[dict] = None,
                  heads: Optional[int] = None) -> dict:
    """``CLIPTextTower`` config of the text tower (``heads``: None for
    ``width // 64``; :func:`clip_file_text_cfg` reads them from the file),
    updated with ``overrides``."""
    width = _require(state_dict, 'ln_final.weight', source).shape[0]
    cfg = dict(
        type='CLIPTextTower',
        context_length=_require(state_dict, 'positional_embedding',
                                source).shape[0],
        vocab_size=_require(state_dict, 'token_embedding.weight',
                            source).shape[0],
        transformer_width=width,
        transformer_heads=heads or openai_heads(width),
        transformer_layers=_count(state_dict, 'transformer.resblocks.'),
        embed_dim=_require(state_dict, 'text_projection', source).shape[1])
    cfg.update(overrides or {})
    return cfg


@dataclass(frozen=True)
class ClipArch:
    """The towers' configs of a CLIP file, and where each head count came
    from (``heads_from``: tower -> :data:`HEADS_FROM_FILE`,
    :data:`HEADS_GIVEN` or :data:`HEADS_BY_RULE`; a ResNet's image tower,
    whose pool's heads follow its width, has no entry)."""

    path: str
    visual: dict
    text: dict
    heads_from: Dict[str, str] = field(default_factory=dict)
    # the options that set the heads, named in messages
    options: Sequence[str] = ('vision_heads', 'text_heads')
    # {tower: activation and where it came from}; a ResNet's image tower
    # (no GELU in it) has none
    activations: Dict[str, ResolvedActivation] = field(default_factory=dict)

    @property
    def is_vit(self) -> bool:
        return self.visual['type'] == 'CLIPVisionTransformer'

    def heads_note(self) -> str:
        """Where the head counts came from, with how to change an assumed
        one: for the header line of a tool."""
        towers = {'visual': ('image', self.options[0]),
                  'text': ('text', self.options[1])}
        by_source: Dict[str, list] = {}
        for tower, source in self.heads_from.items():
            by_source.setdefault(source, []).append(tower)
        mixed = len(by_source) > 1
        parts = []
        for source, text in ((HEADS_FROM_FILE, 'read from the file'),
                             (HEADS_GIVEN, 'as given'),
                             (HEADS_BY_RULE, "assumed by OpenAI's rule, "
                              'width // 64, as the file does not record '
                              'them')):
            names = by_source.get(source)
            if not names:
                continue
            which = ' and '.join(towers[t][0] for t in names) + ' ' \
                if mixed else ''
            parts.append(f'{which}heads {text}')
            if source == HEADS_BY_RULE:
                parts[-1] += (f" ({' / '.join(towers[t][1] for t in names)}"
                              f' if its model has others)')
        return ', '.join(parts)

    def describe(self) -> str:
        """One line: the architecture, head counts included, and where the
        counts came from."""
        vis, txt = self.visual, self.text
        if self.is_vit:
            image = (f"ViT (patch {vis['patch_size']}, width {vis['width']}, "
                     f"{_heads(vis['layers'], 'layer')}, {_heads(vis['heads'])}, "
                     f"{vis['input_resolution']}px)")
        else:
            image = (f"ResNet (layers {vis['layers']}, width {vis['width']}, "
                     f"{vis['input_resolution']}px)")
        return (f'{self.path}: {image}, embedding {vis["output_dim"]}; text '
                f'width {txt["transformer_width"]}, '
                f'{_heads(txt["transformer_layers"], "layer")}, '
                f'{_heads(txt["transformer_heads"])}; {self.heads_note()}'
                f'{self.activation_note()}')

    def activation_note(self) -> str:
        """``'; activation quick_gelu (...)'``: each tower's activation and
        where it came from ('' if unknown)."""
        found = {t: a.describe() for t, a in self.activations.items()}
        if not found:
            return ''
        if len(set(found.values())) == 1:
            return f'; activation {next(iter(found.values()))}'
        names = {'visual': 'image', 'text': 'text'}
        return '; ' + ', '.join(f'{names[t]} activation {a}'
                                for t, a in found.items())


def _heads(count: int, noun: str = 'head') -> str:
    """``count`` and ``noun``, plural where it is not 1."""
    return f'{count} {noun}{"s" if count != 1 else ""}'


def _tower_heads(path: str, tower: str, recorded: Optional[int],
                 given: Optional[int], option: str,
                 width: int) -> Tuple[int, str]:
    """A tower's head count and where it came from."""
    if given is not None and (not isinstance(given, int) or given < 1):
        raise ValueError(f'{option} must be a positive number of attention '
                         f'heads, got {given!r}')
    if recorded is not None:
        if given is not None and given != recorded:
            raise ValueError(
                f'{path} records {_heads(recorded, "attention head")} in its '
                f'{tower} tower, but {option}={given} was given: leave {option} out '
                f'(the file\'s count is used) or give a file of that model')
        return recorded, HEADS_FROM_FILE
    if given is not None:
        if width % given:
            raise ValueError(f'{option}={given} does not divide the {tower} '
                             f'width {width} of {path}')
        return given, HEADS_GIVEN
    return openai_heads(width), HEADS_BY_RULE


def read_clip_arch(path: str,
                   vision_heads: Optional[int] = None,
                   text_heads: Optional[int] = None,
                   options: Sequence[str] = ('vision_heads', 'text_heads'),
                   activation: Optional[str] = None) -> ClipArch:
    """The towers' configs of the CLIP file ``path``, head counts included.

    Each tower's heads: the file's where it records them (a TorchScript
    archive), else ``vision_heads`` / ``text_heads``, else OpenAI's
    ``width // 64``. A given count that the file contradicts, or
    ``vision_heads`` for a ResNet, is a ``ValueError`` naming the option
    (``options``: the names the caller's user knows them by), both counts
    and the file.

    Each tower's activation (a ViT's and the text tower's) is resolved as
    :func:`~denseclip.clip.activation.resolve_activation` does, from
    ``activation`` (set in both towers' configs where given) or the file;
    a given one the file contradicts is a ``ValueError`` naming both.
    """
    state_dict = load_clip_checkpoint(path)
    recorded = clip_file_heads(path)
    info = read_clip_file(path)
    visual = clip_visual_cfg(state_dict, path)
    heads_from = {}
    if visual['type'] == 'CLIPVisionTransformer':
        visual['heads'], heads_from['visual'] = _tower_heads(
            path, 'image', recorded.get('visual'), vision_heads, options[0],
            visual['width'])
    elif vision_heads is not None:
        raise ValueError(f'{options[0]} is for a CLIP ViT; {path} is a CLIP '
                         f'ResNet (its attention pool has width * 32 // 64 '
                         f'heads)')
    text = clip_text_cfg(state_dict, path)
    text['transformer_heads'], heads_from['text'] = _tower_heads(
        path, 'text', recorded.get('text'), text_heads, options[1],
        text['transformer_width'])
    activations = {}
    for tower, cfg in (('visual', visual), ('text', text)):
        if tower == 'visual' and visual['type'] != 'CLIPVisionTransformer':
            continue
        activations[tower] = resolve_activation(
            activation, info.activations.get(tower),
            info.activation_evidence, path)
        if activation is not None:
            cfg['activation'] = activation
    return ClipArch(path, visual, text, heads_from, tuple(options),
                    activations)


def clip_file_text_cfg(path: str, overrides: Optional[dict] = None) -> dict:
    """``CLIPTextTower`` config of the text tower of the CLIP file ``path``
    (heads as :func:`read_clip_arch` finds them; an override's
    ``transformer_heads`` is checked against the file's), updated with
    ``overrides``."""
    overrides = dict(overrides or {})
    heads = overrides.pop('transformer_heads', None)
    cfg = dict(read_clip_arch(path, text_heads=heads,
                              options=('vision_heads',
                                       'transformer_heads')).text)
    cfg.update(overrides)
    return cfg


def describe(path: str, vision_heads: Optional[int] = None,
             text_heads: Optional[int] = None,
             activation: Optional[str] = None) -> str:
    """One line naming the architecture of a CLIP file (for logs and tools):
    see :meth:`ClipArch.describe`."""
    return read_clip_arch(path, vision_heads, text_heads,
                          activation=activation).describe()
