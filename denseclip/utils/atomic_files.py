"""Writing files so that a reader never sees half of one.

Every file this project writes (checkpoints, CLIP files, caches, manifests,
painted images, downloads) goes to a temporary name beside its destination
and is renamed onto it only once complete: a killed run leaves the old file
or none, never a truncated one. Standard library only, so tools that run
before torch is installed can load this file on its own.
"""
import contextlib
import json
import os
import os.path as osp
import tempfile
from typing import Any, Iterator, Optional


def fsync_dir(directory: str) -> None:
    """Flush a folder's entries (a rename) to disk, where the platform can."""
    try:
        fd = os.open(directory or '.', os.O_RDONLY)
    except OSError:  # no directory file descriptors on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_file(partial: str, final: str, fsync: bool = False) -> None:
    """Rename the complete file ``partial`` onto ``final`` (atomic on POSIX);
    with ``fsync``, its bytes and the rename reach the disk first and last."""
    if fsync:
        with open(partial, 'rb+') as f:
            os.fsync(f.fileno())
    os.replace(partial, final)
    if fsync:
        fsync_dir(osp.dirname(osp.abspath(final)))


@contextlib.contextmanager
def atomic_path(path: str, fsync: bool = False,
                partial: Optional[str] = None) -> Iterator[str]:
    """A temporary path to write ``path``'s new content to.

    When the block ends normally the temporary file replaces ``path``; when it
    raises (or the process is interrupted) the temporary file is removed and
    ``path`` is left as it was. ``partial`` names the temporary file (default:
    a unique hidden name in the same folder).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if partial is None:
        fd, partial = tempfile.mkstemp(
            dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.part')
        os.close(fd)
        # mkstemp makes the file private (0600); give it the usual mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
    try:
        yield partial
        replace_file(partial, path, fsync=fsync)
    finally:
        if osp.exists(partial):
            os.remove(partial)


def write_text_atomic(path: str, text: str, fsync: bool = False,
                      partial: Optional[str] = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path, fsync=fsync, partial=partial) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=1))


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
