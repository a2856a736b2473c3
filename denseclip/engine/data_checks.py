"""Data checks that name the file at fault, switched on in any config."""
from typing import List, Optional, Tuple

from mmengine.config import Config

__all__ = ['add_data_checks']


def _label_space(cfg: Config) -> Optional[Tuple[int, int, str]]:
    """``(num_classes, ignore_index, where from)`` of the model's labels."""
    model = cfg.get('model') or {}
    if model.get('module'):  # tools/test.py --tta: a TTA model's segmentor
        model = model.get('module') or {}
    head = model.get('decode_head')
    if isinstance(head, (list, tuple)):  # CascadeEncoderDecoder
        head = head[-1]
    if head and head.get('num_classes'):
        return (int(head['num_classes']), int(head.get('ignore_index', 255)),
                f'model.decode_head.num_classes={head["num_classes"]}')
    return None


def _pipelines(dataset_cfg) -> List[dict]:
    """The dataset configs holding a pipeline, through dataset wrappers
    (``ConcatDataset(datasets=...)``, ``RepeatDataset(dataset=...)``)."""
    if not isinstance(dataset_cfg, dict):
        return []
    found = [dataset_cfg] if dataset_cfg.get('pipeline') else []
    for inner in ([dataset_cfg.get('dataset')] +
                  list(dataset_cfg.get('datasets') or [])):
        found += _pipelines(inner)
    return found


def _is_load_annotations(step) -> bool:
    return isinstance(step, dict) and step.get('type') in (
        'LoadAnnotations', 'mmseg.LoadAnnotations')


def _is_label_check(step) -> bool:
    return isinstance(step, dict) and step.get('type') == 'CheckSegLabels'


def _insert_label_check(steps: list, check: dict) -> int:
    """Put ``check`` after every LoadAnnotations in ``steps``; return how
    many were inserted. In ``TestTimeAug`` (a list of lists of alternative
    transforms) it goes in a list of its own after the one that loads."""
    inserted, i = 0, 0
    while i < len(steps):
        step = steps[i]
        following = steps[i + 1] if i + 1 < len(steps) else None
        if isinstance(step, dict) and step.get('type') == 'TestTimeAug':
            inserted += _insert_label_check(step['transforms'], check)
        elif isinstance(step, (list, tuple)):  # TestTimeAug alternatives
            if any(map(_is_load_annotations, step)) and not (
                    isinstance(following, (list, tuple))
                    and any(map(_is_label_check, following))):
                steps.insert(i + 1, [dict(check)])
                inserted += 1
                i += 1
        elif _is_load_annotations(step) and not _is_label_check(following):
            steps.insert(i + 1, dict(check))
            inserted += 1
            i += 1
        i += 1
    return inserted


def add_data_checks(cfg: Config) -> None:
    """Make bad data stop the run early, with the file named.

    For every dataloader of ``cfg``: its pipeline is wrapped in
    ``NameFilesOnError`` (any error names the sample's image and annotation)
    and gets a ``CheckSegLabels`` after ``LoadAnnotations`` (an annotation
    of another size or channel count than its image; labels outside the
    model's classes that are not the ignore index); and
    ``CheckDataFilesHook`` checks that all listed files exist before a loop
    starts. Configs that already have them are left as they are.
    """
    labels = _label_space(cfg)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        for dataset in _pipelines(loader.get('dataset')):
            steps = list(dataset['pipeline'])
            if len(steps) == 1 and isinstance(steps[0], dict) and \
                    steps[0].get('type') == 'NameFilesOnError':
                continue
            if labels is not None:
                num_classes, ignore_index, source = labels
                check = dict(type='CheckSegLabels', num_classes=num_classes,
                             ignore_index=ignore_index, source=source)
            else:  # the annotation's shape only
                check = dict(type='CheckSegLabels')
            _insert_label_check(steps, check)
            dataset['pipeline'] = [dict(type='NameFilesOnError',
                                        transforms=steps)]
    custom = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'CheckDataFilesHook' for h in custom):
        custom.append(dict(type='CheckDataFilesHook'))
    cfg.custom_hooks = custom
