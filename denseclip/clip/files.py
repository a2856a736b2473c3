"""The named CLIP weights this project can use and where each can be fetched.

One table, :data:`CLIP_FILES`, from a name to its sources:

* OpenAI's names (``RN50`` ... ``ViT-L/14@336px``; ``/`` may be written
  ``-``: ``ViT-B-16`` == ``ViT-B/16``), each with OpenAI's URL and SHA-256
  (copied verbatim from OpenAI's ``clip/clip.py``, ``_MODELS``,
  github.com/openai/CLIP, commit a1d0717: the folder before the file name in
  each URL is the file's SHA-256), then open_clip's copy of the same weights
  on the Hugging Face Hub (``timm/vit_base_patch16_clip_224.openai``), then
  transformers' where there is one (``openai/clip-vit-base-patch16``).
  OpenAI's URLs answer 404 since 2025 (openai/CLIP issue #516), so the hub
  is where most users get them today.
* ``ARCH/TAG`` for open_clip's other weight sets (``ViT-B-16/metaclip_fullcc``,
  ``ViT-H-14/laion2b_s32b_b79k``): the architecture and tag as in open_clip's
  ``src/open_clip/pretrained.py`` (mlfoundations/open_clip at 89fb801), whose
  ``hf_hub`` ids and ``quick_gelu`` flags are copied here.

Each :class:`ClipSource` says how to fetch one file or folder (``kind``:
``'openai-url'`` or ``'hf-hub'``), what it holds (``layout``: ``'openai'``,
``'open_clip'`` or ``'transformers'``), the activation its weights were
trained with (``'quick_gelu'`` or ``'gelu'``) and its approximate size
(parameters x bytes per parameter: OpenAI's files are fp16, the hub's fp32).
A hub source lists the files to try in order, as open_clip does:
``open_clip_model.safetensors``, then ``open_clip_pytorch_model.bin``;
transformers' ``model.safetensors`` (or ``pytorch_model.bin``) with its
``config.json``. No SHA-256 is written for hub files: the hub states one (the
LFS object id, its ``X-Linked-Etag``), and the downloader checks against that
(:mod:`denseclip.clip.hub`).

Where a file lands (:func:`dest_name`): ``pretrained/<name>.<ext>`` with
``/`` and ``@`` written ``-`` (``pretrained/ViT-B-16.pt`` from OpenAI,
``pretrained/ViT-B-16.safetensors`` from open_clip's hub copy,
``pretrained/ViT-B-16-metaclip_fullcc.safetensors``); a transformers source
lands as a folder ``pretrained/<name>-hf/`` holding the weights and
``config.json``.

Only the standard library is imported here, so the table can be read (and the
download tool run) on a machine where mmcv / mmseg are not installed yet.
"""
import hashlib
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Tuple

OPENAI_URL = 'openai-url'
HF_HUB = 'hf-hub'
OPENAI = 'openai'
OPEN_CLIP = 'open_clip'
TRANSFORMERS = 'transformers'
QUICK_GELU = 'quick_gelu'
GELU = 'gelu'
HF_HUB_PREFIX = 'hf-hub:'
# what open_clip downloads from a hub repo, in its order of preference
OPEN_CLIP_FILES = ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')
# a transformers CLIPModel: the weights (either file) and its config.json
TRANSFORMERS_WEIGHTS = ('model.safetensors', 'pytorch_model.bin')
TRANSFORMERS_CONFIG = 'config.json'
# the suffix of the folder a transformers source lands in
TRANSFORMERS_DIR_SUFFIX = '-hf'
# the OpenAI URLs' host; DENSECLIP_OPENAI_BASE_URL replaces it (a mirror, tests)
OPENAI_BASE_URL = 'https://openaipublic.azureedge.net/clip/models/'
OPENAI_BASE_URL_ENV = 'DENSECLIP_OPENAI_BASE_URL'


class ClipSource(NamedTuple):
    """One place a set of CLIP weights can be fetched from."""
    kind: str  # OPENAI_URL | HF_HUB
    layout: str  # OPENAI | OPEN_CLIP | TRANSFORMERS
    activation: str  # QUICK_GELU | GELU
    size_mb: int  # approximate download size, MB
    url: Optional[str] = None  # OPENAI_URL: the file's URL
    sha256: Optional[str] = None  # hex SHA-256 where the source states it
    repo: Optional[str] = None  # HF_HUB: 'org/name'
    # HF_HUB: the weight files to try, in order (the first found is used)
    filenames: Tuple[str, ...] = ()

    def describe(self) -> str:
        """``url`` or ``hf-hub:repo`` (the weights file names)."""
        if self.kind == OPENAI_URL:
            return self.url
        return f'{HF_HUB_PREFIX}{self.repo} ({" | ".join(self.filenames)})'

    def effective_url(self) -> Optional[str]:
        """``url`` with OpenAI's host replaced by ``$DENSECLIP_OPENAI_BASE_URL``
        when that is set (read at call time)."""
        base = os.environ.get(OPENAI_BASE_URL_ENV)
        if self.url and base and self.url.startswith(OPENAI_BASE_URL):
            return base.rstrip('/') + '/' + self.url[len(OPENAI_BASE_URL):]
        return self.url


class ClipFile(NamedTuple):
    """One named set of CLIP weights and its sources, in the order tried."""
    name: str  # OpenAI's name ('ViT-B/16') or open_clip's 'ARCH/TAG'
    sources: Tuple[ClipSource, ...]
    used_by: Tuple[str, ...] = ()  # config families of this project that read it

    @property
    def stem(self) -> str:
        """The name as a file name: ``/`` and ``@`` written ``-``."""
        return self.name.replace('/', '-').replace('@', '-')

    @property
    def openai(self) -> Optional[ClipSource]:
        """OpenAI's URL source, if the weights are OpenAI's."""
        return next((s for s in self.sources if s.kind == OPENAI_URL), None)

    @property
    def url(self) -> Optional[str]:
        """OpenAI's URL, if any."""
        return self.openai.url if self.openai else None

    @property
    def sha256(self) -> Optional[str]:
        """The SHA-256 of OpenAI's file, if any (hub files: stated at download)."""
        return self.openai.sha256 if self.openai else None

    @property
    def activation(self) -> str:
        return self.sources[0].activation

    @property
    def filename(self) -> str:
        """The file name of the first source in ``pretrained/`` (``ViT-B-16.pt``)."""
        return dest_name(self, self.sources[0])

    def file_names(self) -> List[str]:
        """Every name a file of these weights may have in ``pretrained/``, in
        the order of the sources."""
        names = []
        for source in self.sources:
            for filename in source.filenames or (None, ):
                name = dest_name(self, source, filename)
                if name not in names:
                    names.append(name)
        return names


def dest_name(entry: ClipFile, source: ClipSource,
              filename: Optional[str] = None) -> str:
    """The name a file of ``entry`` from ``source`` has in ``pretrained/``.

    OpenAI: its URL's file name (``ViT-B-16.pt``); open_clip hub files:
    ``<stem>.safetensors`` / ``<stem>.bin`` after ``filename`` (default: the
    first); transformers: the folder ``<stem>-hf``.
    """
    if source.kind == OPENAI_URL:
        return source.url.rsplit('/', 1)[-1]
    if source.layout == TRANSFORMERS:
        return entry.stem + TRANSFORMERS_DIR_SUFFIX
    filename = filename or source.filenames[0]
    return entry.stem + osp.splitext(filename)[1]


# the method families whose configs read a file (``used_by``): DenseCLIP
# (configs/*.py, with its CLIP + FPN baselines), MaskCLIP (configs/maskclip,
# configs/ovss/maskclip), MaskCLIP+ (configs/maskclip_plus, through its
# MaskCLIP teacher), and MaskCLIP's training-free successors
# (configs/ovss/<method>); tests/test_download_clip.py reads every config
DENSECLIP = 'DenseCLIP'
MASKCLIP = 'MaskCLIP'
MASKCLIP_PLUS = 'MaskCLIP+'
SCLIP = 'SCLIP'
CLEARCLIP = 'ClearCLIP'
NACLIP = 'NACLIP'
SCCLIP = 'SC-CLIP'
PROXYCLIP = 'ProxyCLIP'
_U = OPENAI_BASE_URL

# parameters (millions) of each architecture, for the sizes
_PARAMS_M = {'RN50': 102, 'RN101': 120, 'RN50x4': 178, 'RN50x16': 291,
             'RN50x64': 623, 'ViT-B-32': 151, 'ViT-B-16': 150,
             'ViT-L-14': 428, 'ViT-L-14-336': 428, 'ViT-H-14': 986}


def _openai(arch: str, url: str, sha256: str) -> ClipSource:
    # OpenAI's TorchScript files hold fp16 weights
    return ClipSource(OPENAI_URL, OPENAI, QUICK_GELU, _PARAMS_M[arch] * 2,
                      url=url, sha256=sha256)


def _open_clip(arch: str, repo: str, activation: str) -> ClipSource:
    return ClipSource(HF_HUB, OPEN_CLIP, activation, _PARAMS_M[arch] * 4,
                      repo=repo, filenames=OPEN_CLIP_FILES)


def _transformers(arch: str, repo: str, activation: str) -> ClipSource:
    return ClipSource(HF_HUB, TRANSFORMERS, activation, _PARAMS_M[arch] * 4,
                      repo=repo, filenames=TRANSFORMERS_WEIGHTS)


def _openai_entry(name: str, arch: str, sha256: str, timm: str,
                  hf: Optional[str] = None, used_by: Tuple[str, ...] = (),
                  file: Optional[str] = None) -> ClipFile:
    file = file or f'{arch}.pt'
    sources = [_openai(arch, f'{_U}{sha256}/{file}', sha256),
               _open_clip(arch, f'timm/{timm}.openai', QUICK_GELU)]
    if hf:
        sources.append(_transformers(arch, hf, QUICK_GELU))
    return ClipFile(name, tuple(sources), used_by)


def _hub_entry(arch: str, tag: str, repo: str, activation: str,
               hf: Optional[str] = None) -> ClipFile:
    sources = [_open_clip(arch, repo, activation)]
    if hf:
        sources.append(_transformers(arch, hf, activation))
    return ClipFile(f'{arch}/{tag}', tuple(sources))


# OpenAI's weights in OpenAI's order (clip.available_models()), then open_clip's
# other weight sets. QuickGELU: OpenAI, MetaCLIP (but metaclip_altogether),
# DFN (but dfn2b_s39b); GELU: LAION, DataComp.
CLIP_FILES: 'OrderedDict[str, ClipFile]' = OrderedDict((f.name, f) for f in (
    _openai_entry('RN50', 'RN50', 'afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762',
                  'resnet50_clip', used_by=(DENSECLIP, MASKCLIP, MASKCLIP_PLUS)),
    _openai_entry('RN101', 'RN101', '8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599',
                  'resnet101_clip', used_by=(DENSECLIP, )),
    _openai_entry('RN50x4', 'RN50x4', '7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd',
                  'resnet50x4_clip'),
    _openai_entry('RN50x16', 'RN50x16', '52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa',
                  'resnet50x16_clip', used_by=(MASKCLIP, MASKCLIP_PLUS)),
    _openai_entry('RN50x64', 'RN50x64', 'be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c',
                  'resnet50x64_clip'),
    _openai_entry('ViT-B/32', 'ViT-B-32', '40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af',
                  'vit_base_patch32_clip_224', 'openai/clip-vit-base-patch32'),
    _openai_entry('ViT-B/16', 'ViT-B-16', '5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f',
                  'vit_base_patch16_clip_224', 'openai/clip-vit-base-patch16',
                  (DENSECLIP, MASKCLIP, MASKCLIP_PLUS, SCLIP, CLEARCLIP, NACLIP,
                   SCCLIP, PROXYCLIP)),
    _openai_entry('ViT-L/14', 'ViT-L-14', 'b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836',
                  'vit_large_patch14_clip_224', 'openai/clip-vit-large-patch14',
                  (MASKCLIP, SCLIP, CLEARCLIP, NACLIP, SCCLIP,
                   PROXYCLIP)),
    _openai_entry('ViT-L/14@336px', 'ViT-L-14-336',
                  '3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02',
                  'vit_large_patch14_clip_336', 'openai/clip-vit-large-patch14-336',
                  file='ViT-L-14-336px.pt'),
    _hub_entry('ViT-B-32', 'laion2b_s34b_b79k', 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K', GELU),
    _hub_entry('ViT-B-32', 'metaclip_fullcc', 'timm/vit_base_patch32_clip_224.metaclip_2pt5b',
               QUICK_GELU),
    _hub_entry('ViT-B-16', 'metaclip_400m', 'timm/vit_base_patch16_clip_224.metaclip_400m',
               QUICK_GELU),
    _hub_entry('ViT-B-16', 'metaclip_fullcc', 'timm/vit_base_patch16_clip_224.metaclip_2pt5b',
               QUICK_GELU, 'facebook/metaclip-b16-fullcc2.5b'),
    _hub_entry('ViT-B-16', 'dfn2b', 'apple/DFN2B-CLIP-ViT-B-16', QUICK_GELU),
    _hub_entry('ViT-B-16', 'laion2b_s34b_b88k', 'laion/CLIP-ViT-B-16-laion2B-s34B-b88K', GELU),
    _hub_entry('ViT-B-16', 'datacomp_xl_s13b_b90k', 'laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K',
               GELU),
    _hub_entry('ViT-L-14', 'metaclip_400m', 'timm/vit_large_patch14_clip_224.metaclip_400m',
               QUICK_GELU),
    _hub_entry('ViT-L-14', 'metaclip_fullcc', 'timm/vit_large_patch14_clip_224.metaclip_2pt5b',
               QUICK_GELU, 'facebook/metaclip-l14-fullcc2.5b'),
    _hub_entry('ViT-L-14', 'dfn2b', 'apple/DFN2B-CLIP-ViT-L-14', QUICK_GELU),
    _hub_entry('ViT-L-14', 'laion2b_s32b_b82k', 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K', GELU),
    _hub_entry('ViT-L-14', 'datacomp_xl_s13b_b90k', 'laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K',
               GELU),
    _hub_entry('ViT-H-14', 'laion2b_s32b_b79k', 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K', GELU,
               'laion/CLIP-ViT-H-14-laion2B-s32B-b79K'),
    _hub_entry('ViT-H-14', 'metaclip_fullcc', 'timm/vit_huge_patch14_clip_224.metaclip_2pt5b',
               QUICK_GELU, 'facebook/metaclip-h14-fullcc2.5b'),
    _hub_entry('ViT-H-14', 'metaclip_altogether',
               'timm/vit_huge_patch14_clip_224.metaclip_altogether', GELU),
    _hub_entry('ViT-H-14', 'dfn5b', 'apple/DFN5B-CLIP-ViT-H-14', QUICK_GELU),
))


class UnknownModelError(ValueError):
    """A name that is not one of ``CLIP_FILES``; the message lists the valid ones."""


def model_names() -> List[str]:
    """Every known name, OpenAI's first, in the table's order."""
    return list(CLIP_FILES)


def openai_names() -> List[str]:
    """OpenAI's names (the entries with an OpenAI URL), in OpenAI's order."""
    return [n for n, f in CLIP_FILES.items() if f.openai is not None]


_EXTENSIONS = ('.pt', '.safetensors', '.bin', '.pth')


def _key(name: str) -> str:
    # 'ViT-B/16', 'ViT-B-16', 'vit-b-16.pt', 'pretrained/ViT-B-16.pt',
    # 'ViT-B-16/openai' and 'ViT-L/14@336px' / 'ViT-L-14-336px.pt' /
    # 'ViT-L-14-336/openai' all give the same key
    key = name.strip()
    if key.lower().endswith(_EXTENSIONS):
        key = osp.splitext(osp.basename(key.replace('\\', '/')))[0]
    key = key.replace('/', '-').replace('@', '-').lower()
    return key[:-len('-openai')] if key.endswith('-openai') else key


_BY_KEY: Dict[str, str] = {_key(n): n for n in CLIP_FILES}
_BY_KEY[_key('ViT-L-14-336')] = 'ViT-L/14@336px'  # open_clip's arch name
for _n, _f in CLIP_FILES.items():  # every file name a download may have
    for _file in _f.file_names():
        _BY_KEY.setdefault(_key(_file), _n)


def resolve_name(name: str) -> str:
    """The table's name for ``name``.

    Accepts the table's names (``ViT-B/16``, ``ViT-B-16/metaclip_fullcc``),
    ``/`` written ``-``, open_clip's ``ARCH/openai`` for OpenAI's weights, file
    names with or without their extension (``ViT-B-16.pt``,
    ``pretrained/ViT-B-16.safetensors``), in any case. Anything else raises
    :class:`UnknownModelError` listing the valid names.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(
            f'empty CLIP model name; valid names: {", ".join(model_names())}')
    try:
        return _BY_KEY[_key(name)]
    except KeyError:
        raise UnknownModelError(
            f'unknown CLIP model {name!r}; valid names: '
            f'{", ".join(model_names())} (or their file names, e.g. ViT-B-16.pt; '
            f'or {HF_HUB_PREFIX}ORG/REPO for any hub repository)') from None


def is_table_name(value: str) -> bool:
    """Whether ``value`` is a name of the table, not a path (a file name
    with an extension or a path with a folder in it is a path)."""
    if not isinstance(value, str) or value.lower().endswith(_EXTENSIONS):
        return False
    return _key(value) in _BY_KEY


def get(name: str) -> ClipFile:
    """The :class:`ClipFile` for any name :func:`resolve_name` accepts."""
    return CLIP_FILES[resolve_name(name)]


def sha256_of(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (the files are up to 4 GB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str, name: str) -> bool:
    """Whether ``path`` is a regular file with the official hash of ``name``
    (OpenAI's weights only: the table states no hash for the hub's)."""
    expected = get(name).sha256
    return expected is not None and osp.isfile(path) and sha256_of(path) == expected


def default_path(name: str, directory: str = 'pretrained') -> str:
    """Where the file of ``name``'s first source goes: ``<directory>/<file name>``."""
    return os.path.join(directory, get(name).filename)


def existing_path(name: str, directory: str = 'pretrained') -> Optional[str]:
    """The file (or transformers folder) of ``name`` in ``directory``, trying
    every name a download of it may have (:meth:`ClipFile.file_names`)."""
    for file_name in get(name).file_names():
        path = os.path.join(directory, file_name)
        if osp.isfile(path) or osp.isfile(osp.join(path, TRANSFORMERS_CONFIG)):
            return path
    return None


# a file in huggingface_hub's cache: .../models--ORG--NAME/snapshots/REV/FILE
_HUB_CACHE_PATH = re.compile(
    r'models--(?P<org>[^/]+?)--(?P<repo>[^/]+)/snapshots/[^/]+(?:/(?P<file>.+))?$')


def source_for_file(path: str, sha256: Optional[str] = None
                    ) -> Optional[Tuple[ClipFile, ClipSource]]:
    """The table's entry and source that ``path`` came from, if known.

    Found by (in order) ``sha256`` (one recorded by a caller, e.g. a results
    file: matched against OpenAI's hashes; the file is not read), the path
    in huggingface_hub's cache (``models--timm--..../snapshots/REV/FILE``, or
    the snapshot folder of a transformers repo), or the file name in
    ``pretrained/`` (:func:`dest_name`; for a file inside a
    ``<name>-hf`` folder, that folder). ``None`` for anything else.
    """
    if sha256:
        for entry in CLIP_FILES.values():
            for source in entry.sources:
                if source.sha256 == sha256:
                    return entry, source
    norm = osp.abspath(path).replace('\\', '/').rstrip('/')
    match = _HUB_CACHE_PATH.search(norm)
    if match:
        repo = f'{match["org"]}/{match["repo"]}'
        file = match['file']
        for entry in CLIP_FILES.values():
            for source in entry.sources:
                if source.repo == repo and (
                        file is None or file in source.filenames
                        or (source.layout == TRANSFORMERS
                            and file == TRANSFORMERS_CONFIG)):
                    return entry, source
        return None
    base = osp.basename(norm)
    parent = osp.basename(osp.dirname(norm))
    if parent.endswith(TRANSFORMERS_DIR_SUFFIX) and base in (
            TRANSFORMERS_WEIGHTS + (TRANSFORMERS_CONFIG, )):
        base = parent
    for entry in CLIP_FILES.values():
        for source in entry.sources:
            for filename in source.filenames or (None, ):
                if dest_name(entry, source, filename) == base:
                    return entry, source
    return None


def _hub_repo(value: str) -> str:
    repo = value[len(HF_HUB_PREFIX):].strip().strip('/')
    if repo.count('/') != 1 or not all(repo.split('/')):
        raise UnknownModelError(
            f'{value!r} is not a hub name: write {HF_HUB_PREFIX}ORG/REPO '
            f'(e.g. {HF_HUB_PREFIX}timm/vit_base_patch16_clip_224.openai)')
    return repo


def find_clip_file(name_or_path: str, directory: str = 'pretrained') -> str:
    """A CLIP file (or transformers folder) from a path, a table name or
    ``hf-hub:ORG/REPO``.

    * an existing path is returned as it is;
    * a table name (``'ViT-B/16'``, ``'ViT-B-16/metaclip_fullcc'``) is looked
      up in ``<directory>`` under every name a download of it may have
      (``ViT-B-16.pt``, ``ViT-B-16.safetensors``, ...); a missing path whose
      file name is one of those (``pretrained/ViT-B-16.pt``, as configs
      write) is looked up the same way beside it and in ``<directory>``;
      when none is there, the error names ``tools/download_clip.py NAME``;
    * ``hf-hub:ORG/REPO`` is downloaded into huggingface_hub's cache (or
      found there) and the cached file is returned, the folder holding
      ``config.json`` for a transformers repo (:func:`denseclip.clip.hub.hub_clip_file`).
    """
    if not isinstance(name_or_path, str):
        raise TypeError(f'a CLIP file must be a path or a name, got '
                        f'{type(name_or_path).__name__}')
    if name_or_path.startswith(HF_HUB_PREFIX):
        from .hub import hub_clip_file  # huggingface_hub is needed only here
        return hub_clip_file(_hub_repo(name_or_path))
    if osp.isfile(name_or_path) or osp.isfile(
            osp.join(name_or_path, TRANSFORMERS_CONFIG)):
        return name_or_path
    try:
        name = resolve_name(name_or_path)
    except UnknownModelError:
        name = None
    if name is not None:
        folders = [directory]
        if not is_table_name(name_or_path) and osp.dirname(name_or_path):
            folders.insert(0, osp.dirname(name_or_path))
        for folder in folders:
            found = existing_path(name, folder)
            if found is not None:
                return found
        looked = ', '.join(os.path.join(folders[0], f)
                           for f in get(name).file_names())
        raise FileNotFoundError(
            f'CLIP file {name_or_path} does not exist (looked for {looked}). '
            f'Download it with `python tools/download_clip.py {name}` '
            f'(pretrained/README.md lists the names and sources).')
    raise FileNotFoundError(
        f'CLIP file {name_or_path} does not exist; give a file, a name of '
        f'`python tools/download_clip.py --list` or {HF_HUB_PREFIX}ORG/REPO.')


def clip_file_for(value):
    """What a config's CLIP file argument (a tower's ``pretrained``) reads.

    A table name or ``hf-hub:`` form goes through :func:`find_clip_file`; so
    does a missing path whose file name is a table name (configs say
    ``pretrained/ViT-B-16.pt``; a hub download may have given
    ``ViT-B-16.safetensors``) when one of its files is found. Anything else
    (an existing path, an unknown missing path, ``None``) is returned as it
    is, for the loader to read or to report.
    """
    if not isinstance(value, str) or osp.exists(value):
        return value
    if value.startswith(HF_HUB_PREFIX) or is_table_name(value):
        return find_clip_file(value)
    try:
        return find_clip_file(value)
    except (FileNotFoundError, UnknownModelError):
        return value
