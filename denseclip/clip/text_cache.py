"""On-disk cache of zero-shot text embeddings, one file per SHA-256 of
their inputs (the CLIP file's content, the names, the templates, the text
tower's config), written atomically (docs/maskclip.md)."""
import functools
import hashlib
import json
import os
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from torch import Tensor

from ..utils.atomic_files import atomic_path
from .class_names import ClassNames
from .files import sha256_of

FORMAT_VERSION = 1


def default_cache_dir() -> str:
    """``$DENSECLIP_CACHE_DIR`` or ``${XDG_CACHE_HOME:-~/.cache}/denseclip``."""
    root = os.environ.get('DENSECLIP_CACHE_DIR')
    if not root:
        root = osp.join(
            os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'),
            'denseclip')
    return root


@functools.lru_cache(maxsize=16)
def _file_sha256(realpath: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the memo key only
    return sha256_of(realpath)


def file_identity(path: str) -> str:
    """SHA-256 of a file's content, memoised per (path, size, mtime)."""
    stat = os.stat(path)
    return _file_sha256(osp.realpath(path), stat.st_size, stat.st_mtime_ns)


class TextEmbeddingCache:
    """Stores ``[K, C]`` text embeddings under a key of their inputs.

    Args:
        cache_dir: root directory (entries go to ``<cache_dir>/text_embeddings``);
            None for :func:`default_cache_dir`.
    """

    def __init__(self, cache_dir: Optional[str] = None):
        root = cache_dir if cache_dir is not None else default_cache_dir()
        self.directory = osp.join(osp.expanduser(root), 'text_embeddings')

    @staticmethod
    def inputs(clip_file: str, class_names: Union[ClassNames, Sequence[str]],
               templates: Sequence[str], text_cfg: dict) -> dict:
        """Everything the embeddings depend on (stored with the entry).

        Names with synonyms are keyed as one list per class (one embedding
        per name); one name per class as the plain list, as before.
        """
        if isinstance(class_names, ClassNames) and class_names.has_synonyms:
            names = [list(s) for s in class_names.synonyms]
        elif isinstance(class_names, ClassNames):
            names = class_names.names
        else:
            names = list(class_names)
        return dict(
            version=FORMAT_VERSION,
            clip_sha256=file_identity(clip_file),
            class_names=names,
            templates=list(templates),
            text_cfg={k: text_cfg[k] for k in sorted(text_cfg)})

    def path(self, inputs: dict) -> str:
        blob = json.dumps(inputs, ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(blob.encode('utf-8')).hexdigest()
        return osp.join(self.directory, f'{digest}.pth')

    def load(self, inputs: dict) -> Optional[Tensor]:
        """The stored embeddings for ``inputs``, or None (absent or unusable)."""
        path = self.path(inputs)
        if not osp.isfile(path):
            return None
        try:
            entry = torch.load(path, map_location='cpu', weights_only=True)
            stored = {k: entry[k] for k in inputs}
            embeddings = entry['embeddings']
        except Exception as err:  # noqa: BLE001 - a broken entry is recomputed
            print_log(f'ignoring unreadable text-embedding cache entry {path} '
                      f'({type(err).__name__}: {err})', logger='current',
                      level=30)
            return None
        expected = (sum(len(n) if isinstance(n, list) else 1
                        for n in inputs['class_names']), )
        if stored != inputs or tuple(embeddings.shape[:1]) != expected:
            print_log(f'ignoring text-embedding cache entry {path}: it was '
                      f'written for other inputs', logger='current', level=30)
            return None
        print_log(f'text embeddings from the cache: {path}', logger='current')
        return embeddings

    def save(self, inputs: dict, embeddings: Tensor) -> str:
        """Store ``embeddings`` atomically; returns the entry's path."""
        path = self.path(inputs)
        with atomic_path(path) as tmp:
            torch.save(dict(inputs, embeddings=embeddings.detach().cpu()), tmp)
        print_log(f'text embeddings cached in {path}', logger='current')
        return path
