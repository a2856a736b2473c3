"""What a measurement was made on, recorded beside it: files by their
SHA-256, a dataset by its root and a fingerprint of its file list.

A results file (``tools/robustness.py``, ``tools/ovss_benchmark.py``, the toy
tables) keeps these records so that a resumed run can tell whether a cell
measured earlier was measured on the same config, weights and data as the
run going on now (:func:`differences`). Standard library only; the dataset
listing (:func:`dataset_record`) imports mmengine / mmseg when called.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Tuple

# keys of a record that only cache what else it says (a file's size and
# modification time, which tell when its hash must be computed again): not
# compared by :func:`differences`
CACHE_KEYS = ('stat', )
# where a model config names weight files (CLIP files, ImageNet or other
# initialisations, MaskCLIP's reference embeddings)
WEIGHT_FILE_KEYS = ('pretrained', 'clip_pretrained', 'checkpoint',
                    'text_embeddings_path', 'visual_projs_path')

# (absolute path, size, mtime_ns) -> sha256, for this process
_HASHES: Dict[Tuple[str, int, int], str] = {}


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str, known: Optional[Dict] = None) -> Dict:
    """``{'path', 'sha256', 'stat': [size, mtime_ns]}`` of the file at
    ``path`` (``sha256`` None when there is no such file: a name such as
    ``torchvision://resnet50``, or a file not there yet).

    A CLIP file is up to 1.7 GB: its hash is taken from ``known`` (the
    record of an earlier run) or from this process's earlier calls while the
    path, size and modification time are the same, and computed otherwise.
    """
    record: Dict[str, Any] = dict(path=path, sha256=None, stat=None)
    if not isinstance(path, str) or not osp.isfile(path):
        return record
    full = osp.abspath(path)
    st = os.stat(full)
    stat = [st.st_size, st.st_mtime_ns]
    record.update(path=full, stat=stat)
    key = (full, st.st_size, st.st_mtime_ns)
    if (known and known.get('path') == full and known.get('stat') == stat
            and known.get('sha256')):
        _HASHES[key] = known['sha256']
    if key not in _HASHES:
        _HASHES[key] = sha256_file(full)
    record['sha256'] = _HASHES[key]
    return record


def weight_files(model_cfg: Any, prefix: str = 'model') -> Dict[str, str]:
    """``{config key: path}`` of every weight file a model config names
    (:data:`WEIGHT_FILE_KEYS`, at any depth: ``model.backbone.pretrained``,
    ``model.teacher.decode_head.clip_pretrained``, ...)."""
    found: Dict[str, str] = {}
    if isinstance(model_cfg, dict):
        items: Iterable = model_cfg.items()
    elif isinstance(model_cfg, (list, tuple)):
        items = enumerate(model_cfg)
    else:
        return found
    for key, value in items:
        name = f'{prefix}.{key}'
        if key in WEIGHT_FILE_KEYS and isinstance(value, str) and value:
            found[name] = value
        else:
            found.update(weight_files(value, name))
    return found


def weight_records(model_cfg: Any,
                   known: Optional[Dict] = None) -> Dict[str, Dict]:
    """:func:`file_record` of each of :func:`weight_files`, by config key
    (``known``: the records of an earlier run, by the same keys)."""
    known = known or {}
    return {key: file_record(path, known.get(key))
            for key, path in weight_files(model_cfg).items()}


def fingerprint_files(root: str, paths: Iterable[str]) -> Dict:
    """``{'root', 'files', 'fingerprint'}``: the SHA-256 of the sorted list
    of the files' paths (relative to ``root`` where they lie under it) and
    sizes. A dataset written anew in place (other images under the same
    names) changes it; the contents are not read (ADE20K is 4,000 files)."""
    root = osp.abspath(root) if root else ''
    lines = []
    for path in paths:
        full = osp.abspath(path)
        size = os.stat(full).st_size if osp.isfile(full) else -1
        inside = root and osp.commonpath([root, full]) == root
        lines.append(f'{osp.relpath(full, root) if inside else full}\t{size}')
    lines.sort()
    digest = hashlib.sha256('\n'.join(lines).encode()).hexdigest()
    return dict(root=root, files=len(lines), fingerprint=digest)


def dataset_files(dataset: Any) -> List[str]:
    """The image and label files of every sample of a built mmengine
    dataset (any wrapper that has ``__len__`` and ``get_data_info``)."""
    paths = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        for key in ('img_path', 'seg_map_path'):
            if info.get(key):
                paths.append(info[key])
    return paths


def dataset_record(dataset_cfg: Dict, where: str = 'the dataset') -> Dict:
    """``{'root', 'images', 'files', 'fingerprint'}`` of the dataset
    ``dataset_cfg`` builds (its pipeline left out; ``indices`` and
    ``ann_file`` as configured): what a test run reads. A dataset that
    cannot be listed is a ``ValueError`` naming ``where`` and the root."""
    from mmengine.registry import DefaultScope, init_default_scope
    from mmseg.registry import DATASETS

    import denseclip  # noqa: F401  (registers the dataset types)
    if DefaultScope.get_current_instance() is None:
        init_default_scope('mmseg')
    root = dataset_cfg.get('data_root') or ''
    try:
        dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
        paths = dataset_files(dataset)
    except Exception as err:  # noqa: BLE001 - re-raised naming the data
        raise ValueError(
            f'{where} (data_root {root or "not set"}) cannot be listed: '
            f'{type(err).__name__}: {err}') from err
    record = fingerprint_files(root, paths)
    return dict(root=record['root'], images=len(dataset),
                files=record['files'], fingerprint=record['fingerprint'])


def config_sha256(cfg: Any) -> str:
    """SHA-256 of a resolved mmengine config (its bases and options merged):
    a change anywhere that reaches the config changes it, a comment does
    not."""
    text = json.dumps(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg,
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def describe(value: Any) -> str:
    """A recorded value as a message or a table's note shows it (a file by
    its path and short hash, a dataset by its root, file count and short
    fingerprint)."""
    if isinstance(value, dict):
        if 'sha256' in value and 'path' in value:
            sha = value['sha256']
            return (f'{value["path"]} (sha256 {sha[:12]})' if sha else
                    f'{value["path"]} (no such file)')
        if 'fingerprint' in value:
            images = (f'{value["images"]} images, ' if 'images' in value
                      else '')
            return (f'{value.get("root")} ({images}{value.get("files")} '
                    f'files, fingerprint {str(value["fingerprint"])[:12]})')
    if isinstance(value, str) and len(value) == 64 and all(
            c in '0123456789abcdef' for c in value):
        return value[:12]
    return repr(value)


def differences(recorded: Any, current: Any, name: str = '') -> List[str]:
    """``'<key>: <then> then, <now> now'`` for each recorded value that
    differs from the current one (nested records by their dotted key;
    :data:`CACHE_KEYS` ignored; a file or data record as one value)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        whole = any(k in current for k in ('sha256', 'fingerprint'))
        keys = [k for k in list(recorded) + [k for k in current
                                             if k not in recorded]
                if k not in CACHE_KEYS]
        if whole:  # a file or a dataset: one line naming both
            if any(recorded.get(k) != current.get(k) for k in keys):
                return [f'{name}: {describe(recorded)} then, '
                        f'{describe(current)} now']
            return []
        found: List[str] = []
        for key in keys:
            found += differences(recorded.get(key), current.get(key),
                                 f'{name}.{key}' if name else str(key))
        return found
    if recorded == current:
        return []
    if _strings(recorded) and _strings(current) and (
            set(recorded) != set(current)):  # options: name what changed
        removed = [v for v in recorded if v not in current]
        added = [v for v in current if v not in recorded]
        if not removed:
            return [f'{name}: {" ".join(added)} added now']
        if not added:
            return [f'{name}: {" ".join(removed)} not given now']
        return [f'{name}: {" ".join(removed)} then, {" ".join(added)} now']
    return [f'{name}: {describe(recorded)} then, {describe(current)} now']


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
