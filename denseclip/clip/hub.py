"""Fetching CLIP files from the Hugging Face Hub (``huggingface_hub``).

Files go through huggingface_hub's own cache (``HF_HUB_CACHE`` /
``HF_HOME``; a broken transfer is resumed with an HTTP Range request, up to
five times, by huggingface_hub itself), with its ``HF_TOKEN`` (private and
gated repositories) and ``HF_ENDPOINT`` (a mirror), both read when a
download starts. A copy for ``pretrained/`` is written under a temporary
name and renamed onto its final name only after its SHA-256 has been checked
against the one the hub states: huggingface_hub names the cached blob of a
file stored in Git LFS by its LFS object id, which is the file's SHA-256
(the ``X-Linked-Etag`` of the hub's answer); a file without one (not in
LFS, or a cache without symlinks) is copied unchecked, and the caller is
told so. A copy with another hash is removed, as is the cached blob, so
that the next try downloads it again.

huggingface_hub is imported only when a download starts, and nothing else of
this package is imported at module level, so ``tools/download_clip.py`` can
load this file on its own before mmcv is installed.
"""
import hashlib
import os
import os.path as osp
import re
import shutil
import tempfile
from typing import NamedTuple, Optional, Sequence

_SHA256 = re.compile(r'[0-9a-f]{64}')
CHUNK_SIZE = 1 << 20


class HubError(FileNotFoundError):
    """A file that could not be had from the hub; the message says what to do."""


class HubNetworkError(HubError):
    """The hub could not be reached (and the file is not in its cache)."""


class HubChecksumError(HubError):
    """A hub file whose bytes do not have the SHA-256 the hub states."""


class HubFile(NamedTuple):
    """One file in huggingface_hub's cache."""
    repo: str
    filename: str  # the name in the repository
    path: str  # the cached file
    sha256: Optional[str]  # the hub's LFS SHA-256, when it states one


def endpoint() -> str:
    """The hub's address: ``$HF_ENDPOINT`` or huggingface.co (read now)."""
    return (os.environ.get('HF_ENDPOINT') or 'https://huggingface.co').rstrip('/')


def _hub():
    try:
        import huggingface_hub
    except ImportError as exc:
        raise HubError(
            'downloading from the Hugging Face Hub needs huggingface_hub: '
            'pip install huggingface_hub (tools/install.sh installs it)') from exc
    return huggingface_hub


def lfs_sha256(cached_path: str) -> Optional[str]:
    """The SHA-256 the hub states for a cached file: the name of its blob
    (huggingface_hub names LFS blobs by their object id), if it is one."""
    name = osp.basename(osp.realpath(cached_path))
    return name if _SHA256.fullmatch(name) else None


def fetch_hub_file(repo: str, filenames: Sequence[str], *,
                   revision: Optional[str] = None,
                   cache_dir: Optional[str] = None) -> HubFile:
    """The first of ``filenames`` that ``repo`` has, in huggingface_hub's
    cache (downloaded there if needed). Raises :class:`HubError` with a
    message naming the repository and what to do."""
    hub = _hub()
    from huggingface_hub import errors
    where = f'{endpoint()}/{repo}'
    for filename in filenames:
        try:
            path = hub.hf_hub_download(
                repo, filename, revision=revision, cache_dir=cache_dir,
                endpoint=os.environ.get('HF_ENDPOINT') or None)
        except errors.LocalEntryNotFoundError as exc:  # a subclass of the next
            raise HubNetworkError(
                f'cannot reach {endpoint()} for {repo}/{filename} and it is '
                f'not in the hub cache: connect to the internet (or set '
                f'HF_ENDPOINT to a mirror), or download it on another machine '
                f'and copy it into pretrained/') from exc
        except errors.EntryNotFoundError:
            continue  # the next name (open_clip: .safetensors, then .bin)
        except errors.GatedRepoError as exc:
            raise HubError(
                f'{where} is gated: accept its terms on the hub, then set '
                f'HF_TOKEN to a token of your account') from exc
        except errors.RepositoryNotFoundError as exc:
            raise HubError(
                f'no repository {repo} at {endpoint()} (or it is private): '
                f'check the name (python tools/download_clip.py --list), or '
                f'set HF_TOKEN for a private one') from exc
        except errors.RevisionNotFoundError as exc:
            raise HubError(f'{where} has no revision {revision}') from exc
        except (errors.HfHubHTTPError, OSError) as exc:
            raise HubError(f'download of {repo}/{filename} from {endpoint()} '
                           f'failed: {str(exc).splitlines()[0]}') from exc
        return HubFile(repo, filename, path, lfs_sha256(path))
    raise HubError(f'{where} has none of {", ".join(filenames)}: it is not a '
                   f'CLIP repository of a layout this project reads')


def forget_cached(cached: HubFile) -> None:
    """Remove a cached file and its blob (after a wrong hash)."""
    real = osp.realpath(cached.path)
    for path in {cached.path, real}:
        if osp.lexists(path):
            os.remove(path)


def _temp_beside(dest: str, directory: bool = False) -> str:
    folder = osp.dirname(osp.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    prefix = f'.{osp.basename(dest)}.'
    if directory:
        return tempfile.mkdtemp(dir=folder, prefix=prefix, suffix='.part')
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix='.part')
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def _copy_hashed(src: str, dest: str) -> str:
    digest = hashlib.sha256()
    with open(src, 'rb') as fin, open(dest, 'wb') as fout:
        for chunk in iter(lambda: fin.read(CHUNK_SIZE), b''):
            fout.write(chunk)
            digest.update(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()


def _check(cached: HubFile, got: str) -> None:
    if cached.sha256 is not None and got != cached.sha256:
        forget_cached(cached)
        raise HubChecksumError(
            f'SHA-256 mismatch for {cached.repo}/{cached.filename}: the hub '
            f'states {cached.sha256}, got {got}; nothing was saved and the '
            f'cached copy was removed, run again to download it anew')


def install_file(cached: HubFile, dest: str) -> str:
    """Copy ``cached`` to ``dest`` through a temporary file, renamed onto
    ``dest`` only when its SHA-256 is the hub's (when the hub states one).
    On any failure nothing is left under ``dest`` or beside it."""
    tmp = _temp_beside(dest)
    try:
        _check(cached, _copy_hashed(cached.path, tmp))
        os.replace(tmp, dest)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return dest


def install_folder(files: Sequence[HubFile], dest: str) -> str:
    """Copy ``files`` (a transformers model: weights and ``config.json``)
    into the folder ``dest``, built under a temporary name and renamed onto
    ``dest`` only when every file with a stated SHA-256 has it."""
    tmp = _temp_beside(dest, directory=True)
    try:
        for cached in files:
            _check(cached, _copy_hashed(cached.path,
                                        osp.join(tmp, cached.filename)))
        if osp.isdir(dest):
            old = _temp_beside(dest, directory=True)
            os.rmdir(old)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def hub_clip_file(repo: str, *, cache_dir: Optional[str] = None) -> str:
    """The CLIP weights of hub repository ``repo`` in huggingface_hub's
    cache (``hf-hub:ORG/REPO``): open_clip's file, or, for a transformers
    repository, the cached folder holding its weights and ``config.json``.
    A repository the table names is read in the layout the table says."""
    from .files import (CLIP_FILES, OPEN_CLIP_FILES, TRANSFORMERS,
                        TRANSFORMERS_CONFIG, TRANSFORMERS_WEIGHTS)
    layouts = [s for f in CLIP_FILES.values() for s in f.sources
               if s.repo == repo]
    transformers_first = bool(layouts) and layouts[0].layout == TRANSFORMERS
    tries = [(False, OPEN_CLIP_FILES), (True, TRANSFORMERS_WEIGHTS)]
    if transformers_first:
        tries.reverse()
    errors = []
    for is_transformers, filenames in tries:
        try:
            weights = fetch_hub_file(repo, filenames, cache_dir=cache_dir)
        except HubError as exc:
            if 'has none of' not in str(exc):
                raise
            errors.append(str(exc))
            continue
        if not is_transformers:
            return weights.path
        fetch_hub_file(repo, [TRANSFORMERS_CONFIG], cache_dir=cache_dir)
        return osp.dirname(weights.path)
    raise HubError(
        f'{endpoint()}/{repo} holds no CLIP weights this project reads '
        f'(open_clip: {", ".join(OPEN_CLIP_FILES)}; transformers: '
        f'{" or ".join(TRANSFORMERS_WEIGHTS)} with {TRANSFORMERS_CONFIG})')
