"""The OpenAI CLIP files this project can use: names, official URLs, SHA-256.

This is the one table of CLIP downloads; ``tools/download_clip.py``, the tests
and ``pretrained/README.md`` all follow it. The URLs are copied verbatim from OpenAI's
``clip/clip.py`` (``_MODELS``, github.com/openai/CLIP, commit a1d0717). In each
of them the folder before the file name is the SHA-256 of the file: OpenAI's
own loader checks downloads against it, and so do we (``sha256`` is kept as
its own field, and a test checks that each URL carries it).

Only the standard library is imported here, so the table can be read (and the
download tool run) on a machine where mmcv / mmseg are not installed yet.
"""
import hashlib
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Tuple


class ClipFile(NamedTuple):
    """One OpenAI CLIP file."""
    name: str  # OpenAI's model name, as in ``clip.available_models()``
    url: str  # verbatim from OpenAI's ``_MODELS``
    sha256: str  # hex SHA-256 of the file (also the folder name in ``url``)
    used_by: Tuple[str, ...] = ()  # config families of this project that read it

    @property
    def filename(self) -> str:
        """The file name, in ``pretrained/`` as in the URL (``ViT-B-16.pt``)."""
        return self.url.rsplit('/', 1)[-1]


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
_U = 'https://openaipublic.azureedge.net/clip/models/'

# In OpenAI's order (clip.available_models()).
CLIP_FILES: 'OrderedDict[str, ClipFile]' = OrderedDict((f.name, f) for f in (
    ClipFile(
        'RN50',
        _U + 'afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt',
        'afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762',
        (DENSECLIP, MASKCLIP, MASKCLIP_PLUS)),
    ClipFile(
        'RN101',
        _U + '8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt',
        '8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599',
        (DENSECLIP, )),
    ClipFile(
        'RN50x4',
        _U + '7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt',
        '7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd'),
    ClipFile(
        'RN50x16',
        _U + '52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt',
        '52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa',
        (MASKCLIP, MASKCLIP_PLUS)),
    ClipFile(
        'RN50x64',
        _U + 'be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt',
        'be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c'),
    ClipFile(
        'ViT-B/32',
        _U + '40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt',
        '40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af'),
    ClipFile(
        'ViT-B/16',
        _U + '5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt',
        '5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f',
        (DENSECLIP, MASKCLIP, MASKCLIP_PLUS, SCLIP, CLEARCLIP, NACLIP)),
    ClipFile(
        'ViT-L/14',
        _U + 'b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt',
        'b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836'),
    ClipFile(
        'ViT-L/14@336px',
        _U + '3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/'
        'ViT-L-14-336px.pt',
        '3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02'),
))


class UnknownModelError(ValueError):
    """A name that is not one of ``CLIP_FILES``; the message lists the valid ones."""


def model_names() -> List[str]:
    """OpenAI's names of every known CLIP file, in OpenAI's order."""
    return list(CLIP_FILES)


def _key(name: str) -> str:
    # 'ViT-B/16', 'ViT-B-16', 'vit-b-16.pt', 'pretrained/ViT-B-16.pt' and
    # 'ViT-L/14@336px' / 'ViT-L-14-336px.pt' all give the same key.
    key = name.strip()
    if key.lower().endswith('.pt'):
        key = osp.basename(key.replace('\\', '/'))[:-3]
    return key.replace('/', '-').replace('@', '-').lower()


_BY_KEY: Dict[str, str] = {_key(n): n for n in CLIP_FILES}


def resolve_name(name: str) -> str:
    """OpenAI's name for ``name``.

    Accepts OpenAI's names (``ViT-B/16``), file names with or without ``.pt``
    (``ViT-B-16``, ``ViT-B-16.pt``, ``pretrained/ViT-B-16.pt``), in any case.
    Anything else raises :class:`UnknownModelError` listing the valid names.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(
            f'empty CLIP model name; valid names: {", ".join(model_names())}')
    try:
        return _BY_KEY[_key(name)]
    except KeyError:
        raise UnknownModelError(
            f'unknown CLIP model {name!r}; valid names: '
            f'{", ".join(model_names())} (or their file names, e.g. ViT-B-16.pt)'
        ) from None


def get(name: str) -> ClipFile:
    """The :class:`ClipFile` for any name :func:`resolve_name` accepts."""
    return CLIP_FILES[resolve_name(name)]


def sha256_of(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (the files are up to 1.3 GB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str, name: str) -> bool:
    """Whether ``path`` is a regular file with the official hash of ``name``."""
    expected = get(name).sha256
    return osp.isfile(path) and sha256_of(path) == expected


def default_path(name: str, directory: str = 'pretrained') -> str:
    """Where the file of ``name`` goes: ``<directory>/<file name>``."""
    return os.path.join(directory, get(name).filename)


def find_clip_file(name_or_path: str, directory: str = 'pretrained') -> str:
    """A CLIP file path from a path or an OpenAI model name (``'ViT-B/16'``).

    A name is looked up as ``<directory>/<file name>`` (``pretrained/ViT-B-16.pt``).
    """
    if osp.isfile(name_or_path):
        return name_or_path
    try:
        path = default_path(name_or_path, directory)
    except UnknownModelError:
        path = None
    if path is not None and osp.isfile(path):
        return path
    hint = (f' Download it with `python tools/download_clip.py '
            f'{resolve_name(name_or_path)}`.' if path else '')
    raise FileNotFoundError(
        f'CLIP file {name_or_path} does not exist'
        f'{f" (nor {path})" if path and path != name_or_path else ""}.{hint}')
