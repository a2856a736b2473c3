"""Checkpoint files on disk: complete or not, and which one to resume from.

A run killed while it writes a checkpoint leaves a truncated file. torch's
error for it (``PytorchStreamReader failed reading zip archive: failed
finding central directory``) names no file, and mmengine's ``--resume``
trusts whatever ``last_checkpoint`` names. This module

* checks a file before it is loaded (:func:`check_checkpoint_file`): torch's
  zip format ends with a central directory, so a truncated file is detected
  without unpickling it; with ``full=True`` every record's CRC is checked too;
* finds the newest complete checkpoint of a work dir
  (:func:`find_resumable_checkpoint`), skipping, with a warning naming them,
  a ``last_checkpoint`` that points to a missing or broken file and broken
  ``iter_N.pth`` / ``epoch_N.pth`` files;
* wraps mmengine's local checkpoint loader so that a broken file is an error
  that names it, wherever it is loaded (``load_from``, ``--resume``,
  ``init_cfg=dict(type='Pretrained')``).
"""
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

__all__ = [
    'CheckpointFileError', 'PARTIAL_SUFFIX', 'check_checkpoint_file',
    'find_resumable_checkpoint', 'remove_partial_checkpoints'
]

# a checkpoint being written is named <name>.partial until it is complete
PARTIAL_SUFFIX = '.partial'
_ZIP_MAGIC = b'PK\x03\x04'
# torch < 1.6 (and torch.save(..., _use_new_zipfile_serialization=False))
# wrote a pickle: the PROTO opcode (protocol 2..5), then torch's magic number
_LEGACY_MAGIC = tuple(b'\x80' + bytes([p]) for p in range(2, 6))
_NUMBERED = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


class CheckpointFileError(RuntimeError):
    """A checkpoint file that is missing, truncated or not a checkpoint."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f'checkpoint {path} {reason}')


def check_checkpoint_file(path: str, full: bool = False) -> None:
    """Raise :class:`CheckpointFileError` unless ``path`` looks complete.

    A zip-format checkpoint (what ``torch.save`` writes since torch 1.6) must
    have its central directory (it is written last); with ``full`` every
    record is read and its CRC checked. Legacy (pickle) files can only be
    checked for their magic number; ``torch.load`` finds the rest.
    """
    if not osp.isfile(path):
        raise CheckpointFileError(path, 'does not exist')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointFileError(
            path, 'is empty (0 bytes): it was never written completely')
    with open(path, 'rb') as f:
        head = f.read(4)
    if head.startswith(_LEGACY_MAGIC):
        return
    if head != _ZIP_MAGIC:
        raise CheckpointFileError(
            path, f'is not a PyTorch checkpoint (starts with {head!r})')
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip() if full else None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CheckpointFileError(
            path, f'is truncated or damaged ({size} bytes; {err}); it was '
            'probably being written when the run was killed') from None
    if bad is not None:
        raise CheckpointFileError(
            path, f'is damaged: record {bad} fails its CRC check')


def _numbered_checkpoints(work_dir: str) -> List[Tuple[int, str]]:
    """``(number, path)`` of the ``iter_N.pth``/``epoch_N.pth`` files, newest first."""
    found = []
    for name in os.listdir(work_dir):
        match = _NUMBERED.match(name)
        if match:
            found.append((int(match.group(2)), osp.join(work_dir, name)))
    return sorted(found, reverse=True)


def _named_in_last_checkpoint(work_dir: str) -> Optional[str]:
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        name = f.read().strip()
    if not name:
        return None
    # mmengine writes the path as it joined it (relative to the cwd of the
    # run when work_dir was relative); fall back to the work dir itself
    if not osp.isfile(name) and osp.isfile(
            osp.join(work_dir, osp.basename(name))):
        name = osp.join(work_dir, osp.basename(name))
    return name


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of ``work_dir``, or None.

    ``last_checkpoint`` is taken when it names a complete file. Otherwise
    (missing, empty, or pointing to a truncated or missing file) the
    ``iter_N.pth`` / ``epoch_N.pth`` files are tried from the highest ``N``
    down; each broken one is named in a warning and never chosen.
    """
    if not osp.isdir(work_dir):
        return None
    named = _named_in_last_checkpoint(work_dir)
    if named is not None:
        try:
            check_checkpoint_file(named, full=True)
            return named
        except CheckpointFileError as err:
            print_log(f'not resuming from {named}, which last_checkpoint '
                      f'names: {err.reason}', logger='current',
                      level=logging.WARNING)
    for _, path in _numbered_checkpoints(work_dir):
        if named is not None and osp.abspath(path) == osp.abspath(named):
            continue
        try:
            check_checkpoint_file(path, full=True)
        except CheckpointFileError as err:
            print_log(f'skipping {path}: {err.reason}', logger='current',
                      level=logging.WARNING)
            continue
        return path
    return None


def remove_partial_checkpoints(work_dir: str) -> List[str]:
    """Delete ``*.pth.partial`` files (checkpoints a killed run left half
    written) and ``last_checkpoint.partial.<pid>`` files in ``work_dir``;
    return their paths."""
    removed = []
    if not osp.isdir(work_dir):
        return removed
    for name in sorted(os.listdir(work_dir)):
        if name.endswith('.pth' + PARTIAL_SUFFIX) or name.startswith(
                'last_checkpoint' + PARTIAL_SUFFIX + '.'):
            path = osp.join(work_dir, name)
            os.remove(path)
            removed.append(path)
            print_log(f'removed {path}: a checkpoint that an interrupted run '
                      'did not finish writing', logger='current')
    return removed


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local_named(filename: str, map_location=None):
    """mmengine's local loader, checking the file first: a truncated, empty
    or foreign file is a :class:`CheckpointFileError` that names it, not
    torch's anonymous ``PytorchStreamReader`` (or ``OSError``, ``KeyError``
    ...) error."""
    path = osp.expanduser(filename)
    if osp.isfile(path):  # a missing file: mmengine's FileNotFoundError
        check_checkpoint_file(path)
    try:
        return load_from_local(filename, map_location)
    except Exception as err:
        if osp.isfile(path):
            try:
                check_checkpoint_file(path, full=True)
            except CheckpointFileError as named:
                raise named from err
        raise
