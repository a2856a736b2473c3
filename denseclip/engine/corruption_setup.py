"""Put ``Corrupt`` into a config's test pipelines (``tools/test.py --corrupt``).

Any config becomes a robustness run without a file of its own: the step goes
right after the transform that loads the image (``LoadImageFromFile``), before
resizing, in the test dataloader's pipeline (through dataset wrappers and a
``NameFilesOnError`` wrapper) and in ``tta_pipeline`` / ``test_pipeline``
where the config has them, so ``--tta`` corrupts every scale and flip of the
same corrupted image.
"""
from typing import List, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..datasets.corrupt import check_corruption

__all__ = ['add_corruption']


def _type(step) -> str:
    """A transform's registered name without its scope (``mmseg.X``: ``X``)."""
    name = step.get('type') if isinstance(step, dict) else None
    return name.rsplit('.', 1)[-1] if isinstance(name, str) else ''


def _loads_image(step) -> bool:
    # LoadImageFromFile (mmcv, mmseg), LoadImageFromNDArray, ...
    return _type(step).startswith('LoadImageFrom')


def _insert(steps: list, corrupt: dict) -> int:
    """Put ``corrupt`` after each image-loading step of ``steps`` (replacing a
    ``Corrupt`` already there); return how many places."""
    placed, i = 0, 0
    while i < len(steps):
        step = steps[i]
        following = steps[i + 1] if i + 1 < len(steps) else None
        if isinstance(step, (list, tuple)):  # TestTimeAug alternatives
            if any(map(_loads_image, step)):
                if isinstance(following, (list, tuple)) and \
                        any(_type(s) == 'Corrupt' for s in following):
                    steps[i + 1] = [dict(corrupt)]
                else:
                    steps.insert(i + 1, [dict(corrupt)])
                placed += 1
                i += 1
            else:
                placed += _insert(step, corrupt)
        elif _loads_image(step):
            if _type(following) == 'Corrupt':
                steps[i + 1] = dict(corrupt)
            else:
                steps.insert(i + 1, dict(corrupt))
            placed += 1
            i += 1
        elif isinstance(step, dict) and isinstance(step.get('transforms'),
                                                   (list, tuple)):
            # NameFilesOnError, TestTimeAug, Compose-like wrappers
            inner = list(step['transforms'])
            found = _insert(inner, corrupt)
            if found:
                step['transforms'] = inner
                placed += found
        i += 1
    return placed


def _datasets(dataset_cfg, where: str) -> List[tuple]:
    """``(dataset config, where)`` for each dataset holding a pipeline,
    through wrappers (``ConcatDataset(datasets=...)``,
    ``RepeatDataset(dataset=...)``)."""
    if not isinstance(dataset_cfg, dict):
        return []
    found = [(dataset_cfg, where)] if dataset_cfg.get('pipeline') else []
    found += _datasets(dataset_cfg.get('dataset'), where + '.dataset')
    for k, inner in enumerate(dataset_cfg.get('datasets') or []):
        found += _datasets(inner, f'{where}.datasets.{k}')
    return found


def add_corruption(cfg: Config, name: Optional[str], level: Optional[int],
                   seed: int = 0) -> List[str]:
    """Corrupt every test image of ``cfg`` with ``name`` at ``level`` (1-5).

    Inserts ``dict(type='Corrupt', name=name, level=level, seed=seed)``
    right after the image-loading step of ``test_dataloader``'s pipeline(s)
    and of ``tta_pipeline`` and ``test_pipeline`` where present; a
    ``Corrupt`` already there is replaced. Returns the places it went to.
    ``name`` and ``level`` both ``None``: nothing to do. A test pipeline
    without an image-loading step is an error that says where to put it.
    """
    if name is None and level is None:
        return []
    if name is None or level is None:
        raise ValueError(
            'a corruption needs both a type and a level: tools/test.py '
            f'--corrupt NAME --severity 1-5 (got type {name!r}, level '
            f'{level!r})')
    check_corruption(name, level)
    corrupt = dict(type='Corrupt', name=name, level=int(level),
                   seed=int(seed))
    loader = cfg.get('test_dataloader') or {}
    datasets = _datasets(loader.get('dataset'), 'test_dataloader.dataset')
    if not datasets:
        raise ValueError('the config has no test_dataloader.dataset.pipeline '
                         f'to put Corrupt({name}) into')
    places = []
    for dataset, where in datasets:
        steps = list(dataset['pipeline'])
        if not _insert(steps, corrupt):
            raise ValueError(
                f'{where}.pipeline has no LoadImageFromFile step to put '
                f'Corrupt({name}) after; add {corrupt} to the pipeline '
                'after the step that loads the image')
        dataset['pipeline'] = steps
        places.append(f'{where}.pipeline')
    for key in ('tta_pipeline', 'test_pipeline'):
        if isinstance(cfg.get(key), (list, tuple)):
            steps = list(cfg[key])
            if _insert(steps, corrupt):
                cfg[key] = steps
                places.append(key)
    print_log(f'corruption {name}, level {level}: Corrupt after '
              f'LoadImageFromFile in {", ".join(places)}', logger='current')
    return places
