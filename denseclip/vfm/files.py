"""The named vision foundation model (VFM) weights and where each is fetched.

One table, :data:`VFM_FILES`, from a name (``dino_vitb8``, ``dino_vitb16``,
``dinov2_vitb14_reg``, and the small ones ``dino_vits8``, ``dino_vits16``,
``dinov2_vits14_reg``: the names of the models' own ``torch.hub`` entries,
which ProxyCLIP loads) to its architecture and its sources on the Hugging
Face Hub, in the order tried:

1. timm's copy (``timm/vit_base_patch8_224.dino`` ...: ``model.safetensors``,
   else ``pytorch_model.bin``), in the models' own key layout (DINOv2 with
   registers as timm's ``reg_token`` and a position table without the class
   token's row, which timm folds into ``cls_token``);
2. transformers' (``facebook/dino-vitb8`` ...: ``model.safetensors`` or
   ``pytorch_model.bin`` with ``config.json``).

The official ``.pth`` files (``dl.fbaipublicfiles.com``) are read too when
given as a path, but are not in the table: the hub states a SHA-256 for its
files (checked on download, :mod:`denseclip.clip.hub`), the official URLs do
not.

Where a file lands (:func:`dest_name`): ``pretrained/<name>.safetensors`` (or
``.bin``) from timm's repository, the folder ``pretrained/<name>-hf/`` from
transformers'. :func:`find_vfm_file` turns a name into the file present
there, or raises naming the download command.

The repository names and sizes were written from the projects' model cards
and were not fetched from this machine (no internet here): the download is
tested against a local hub only.

Only the standard library is imported here, so that ``tools/download_vfm.py``
can load this file on its own before mmcv is installed.
"""
import os.path as osp
from collections import OrderedDict
from typing import List, NamedTuple, Optional, Tuple

HF_HUB = 'hf-hub'
# layouts of a VFM file (denseclip/vfm/layouts.py reads both)
TIMM = 'timm'  # also DINO's and DINOv2's own .pth files
TRANSFORMERS = 'transformers'
TIMM_FILES = ('model.safetensors', 'pytorch_model.bin')
TRANSFORMERS_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')
TRANSFORMERS_CONFIG = 'config.json'
TRANSFORMERS_DIR_SUFFIX = '-hf'

# how the position table is resized to another grid (denseclip/vfm/pos_embed.py)
DINO_INTERPOLATION = 'dino'
EXACT_INTERPOLATION = 'exact'
ANTIALIAS_INTERPOLATION = 'antialias'
POS_INTERPOLATIONS = (DINO_INTERPOLATION, EXACT_INTERPOLATION,
                      ANTIALIAS_INTERPOLATION)

DOWNLOAD_TOOL = 'tools/download_vfm.py'


class VFMArch(NamedTuple):
    """What :class:`~denseclip.vfm.model.VisionFoundationModel` builds."""
    patch_size: int
    width: int
    layers: int
    heads: int
    mlp_ratio: float = 4.0
    num_register_tokens: int = 0
    layer_scale: bool = False
    image_size: int = 224  # the training resolution (its position grid)
    pos_interpolation: str = DINO_INTERPOLATION


class VFMSource(NamedTuple):
    """One hub repository holding a set of VFM weights."""
    layout: str  # TIMM | TRANSFORMERS
    repo: str  # 'org/name'
    filenames: Tuple[str, ...]  # the weight files to try, in order
    size_mb: int  # approximate download size (fp32)

    def describe(self) -> str:
        return f'hf-hub:{self.repo} ({" | ".join(self.filenames)})'


class VFMFile(NamedTuple):
    """One named set of VFM weights: its architecture and its sources."""
    name: str
    family: str  # 'DINO' | 'DINOv2'
    arch: VFMArch
    sources: Tuple[VFMSource, ...]
    params_m: float  # parameters, millions

    def file_names(self) -> List[str]:
        """Every name a download of it may have in ``pretrained/``, in the
        order of the sources."""
        names: List[str] = []
        for source in self.sources:
            for filename in source.filenames:
                name = dest_name(self, source, filename)
                if name not in names:
                    names.append(name)
        return names


def dest_name(entry: VFMFile, source: VFMSource,
              filename: Optional[str] = None) -> str:
    """The name a file of ``entry`` from ``source`` has in ``pretrained/``:
    ``<name>.safetensors`` / ``<name>.bin`` (timm), ``<name>-hf`` (a
    transformers folder)."""
    if source.layout == TRANSFORMERS:
        return entry.name + TRANSFORMERS_DIR_SUFFIX
    filename = filename or source.filenames[0]
    return entry.name + osp.splitext(filename)[1]


def _dino(name: str, size: str, patch: int, width: int, heads: int,
          params_m: float) -> VFMFile:
    mb = int(params_m * 4)
    arch = VFMArch(patch, width, 12, heads, image_size=224,
                   pos_interpolation=DINO_INTERPOLATION)
    return VFMFile(name, 'DINO', arch, (
        VFMSource(TIMM, f'timm/vit_{size}_patch{patch}_224.dino', TIMM_FILES,
                  mb),
        VFMSource(TRANSFORMERS, f'facebook/dino-vit{size[0]}{patch}',
                  TRANSFORMERS_WEIGHTS, mb),
    ), params_m)


def _dinov2_reg(name: str, size: str, width: int, heads: int,
                params_m: float) -> VFMFile:
    mb = int(params_m * 4)
    arch = VFMArch(14, width, 12, heads, num_register_tokens=4,
                   layer_scale=True, image_size=518,
                   pos_interpolation=ANTIALIAS_INTERPOLATION)
    return VFMFile(name, 'DINOv2', arch, (
        VFMSource(TIMM, f'timm/vit_{size}_patch14_reg4_dinov2.lvd142m',
                  TIMM_FILES, mb),
        VFMSource(TRANSFORMERS, f'facebook/dinov2-with-registers-{size}',
                  TRANSFORMERS_WEIGHTS, mb),
    ), params_m)


# ProxyCLIP's VFMs (its README: DINO ViT-B/8 by default, DINO ViT-B/16,
# DINOv2 ViT-B/14 with registers; the small ones are in its comments)
VFM_FILES: 'OrderedDict[str, VFMFile]' = OrderedDict((f.name, f) for f in (
    _dino('dino_vitb8', 'base', 8, 768, 12, 85.8),
    _dino('dino_vitb16', 'base', 16, 768, 12, 85.8),
    _dinov2_reg('dinov2_vitb14_reg', 'base', 768, 12, 86.6),
    _dino('dino_vits8', 'small', 8, 384, 6, 21.7),
    _dino('dino_vits16', 'small', 16, 384, 6, 21.7),
    _dinov2_reg('dinov2_vits14_reg', 'small', 384, 6, 22.1),
))


class UnknownVFMError(ValueError):
    """A name that is not one of :data:`VFM_FILES`."""


def vfm_names() -> List[str]:
    return list(VFM_FILES)


def _key(name: str) -> str:
    key = name.strip().replace('\\', '/')
    key = osp.basename(key.rstrip('/'))
    for suffix in ('.safetensors', '.bin', '.pth', '.pt'):
        if key.lower().endswith(suffix):
            key = key[:-len(suffix)]
    if key.endswith(TRANSFORMERS_DIR_SUFFIX):
        key = key[:-len(TRANSFORMERS_DIR_SUFFIX)]
    return key.replace('-', '_').lower()


def is_vfm_name(value: object) -> bool:
    """Whether ``value`` is a name of the table as it is written (not a
    path: no folder, no extension)."""
    return isinstance(value, str) and value.strip() in VFM_FILES


def get(name: str) -> VFMFile:
    """The table's entry for a name (``-`` may be written for ``_``, any
    case, with or without a file extension or the ``-hf`` suffix)."""
    if isinstance(name, str):
        entry = VFM_FILES.get(_key(name))
        if entry is not None:
            return entry
    raise UnknownVFMError(
        f'unknown VFM weights {name!r}; valid names: '
        f'{", ".join(vfm_names())} (`python {DOWNLOAD_TOOL} --list`)')


def existing_path(name: str, directory: str = 'pretrained') -> Optional[str]:
    """The file (or transformers folder) of ``name`` in ``directory``."""
    for file_name in get(name).file_names():
        path = osp.join(directory, file_name)
        if osp.isfile(path) or osp.isfile(osp.join(path, TRANSFORMERS_CONFIG)):
            return path
    return None


def download_command(name: str) -> str:
    return f'python {DOWNLOAD_TOOL} {name}'


def find_vfm_file(name_or_path: str, directory: str = 'pretrained') -> str:
    """A VFM file or transformers folder from a path or a table name.

    An existing path is returned as it is. A table name (``'dino_vitb8'``)
    is looked up in ``directory`` under every name a download may have
    (``dino_vitb8.safetensors``, ``dino_vitb8.bin``, ``dino_vitb8-hf/``);
    so is a missing path whose file name is one of those, beside it first.
    When none is there, :class:`FileNotFoundError` names the download
    command.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise TypeError(f'a VFM file must be a path or a name of '
                        f'{", ".join(vfm_names())}, got {name_or_path!r}')
    if osp.isfile(name_or_path) or osp.isfile(
            osp.join(name_or_path, TRANSFORMERS_CONFIG)):
        return name_or_path
    try:
        entry = get(name_or_path)
    except UnknownVFMError:
        entry = None
    if entry is not None:
        folders = [directory]
        if osp.dirname(name_or_path.rstrip('/')) and not is_vfm_name(
                name_or_path):
            folders.insert(0, osp.dirname(name_or_path.rstrip('/')))
        for folder in folders:
            found = existing_path(entry.name, folder)
            if found is not None:
                return found
        looked = [osp.join(folders[0], f) for f in entry.file_names()]
        if not is_vfm_name(name_or_path) and name_or_path not in looked:
            looked.insert(0, name_or_path)
        looked = ', '.join(looked)
        raise FileNotFoundError(
            f'VFM weights {name_or_path} not found (looked for {looked}). '
            f'Download them with `{download_command(entry.name)}` '
            f'(~{entry.sources[0].size_mb} MB), or give the path of a '
            f'file you have.')
    if osp.isdir(name_or_path):
        raise FileNotFoundError(
            f'{name_or_path} is a folder without {TRANSFORMERS_CONFIG}: give '
            f'a weights file (.safetensors, .bin, .pth) or a transformers '
            f'folder (config.json with model.safetensors or pytorch_model.bin)')
    raise FileNotFoundError(
        f'VFM file {name_or_path} does not exist; give an existing file, a '
        f'transformers folder, or a name of `python {DOWNLOAD_TOOL} --list` '
        f'({", ".join(vfm_names())}).')


def vfm_file_for(value: str, directory: str = 'pretrained') -> str:
    """What a ``pretrained`` option reads: :func:`find_vfm_file`'s answer
    for a name or a missing path, the path itself when it exists."""
    if isinstance(value, str) and osp.exists(value):
        return value
    return find_vfm_file(value, directory)
