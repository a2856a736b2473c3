"""What ``tools/train.py`` and ``tools/test.py`` do to a config before the runner.

One place for the launcher, checkpoint and data logic both tools share: the
CPU distributed set-up (:mod:`.cpu_distributed`), checkpoints that survive a
kill (:class:`.AtomicCheckpointHook`, :class:`.RandomStateHook`),
``--resume`` from the newest *complete* checkpoint, and data checks that
name the file at fault (:func:`add_data_checks`).
"""
import logging
from typing import List, Optional, Tuple

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log

from .checkpoint_files import (CheckpointFileError, check_checkpoint_file,
                               find_resumable_checkpoint,
                               remove_partial_checkpoints)
from .cpu_distributed import setup_distributed

__all__ = [
    'add_data_checks', 'setup_test_run', 'setup_train_run',
    'use_reliable_checkpoints'
]

# the stock hook's names (config type strings) that are swapped
_STOCK_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')


def use_reliable_checkpoints(cfg: Config) -> None:
    """Swap mmengine's ``CheckpointHook`` for ``AtomicCheckpointHook`` (same
    arguments) and add a ``RandomStateHook``, unless the config has them."""
    hooks = cfg.get('default_hooks') or {}
    checkpoint = hooks.get('checkpoint')
    if checkpoint is not None and checkpoint.get(
            'type') in _STOCK_CHECKPOINT_HOOKS:
        checkpoint['type'] = 'AtomicCheckpointHook'
    custom = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'RandomStateHook' for h in custom):
        custom.append(dict(type='RandomStateHook'))
    cfg.custom_hooks = custom


def _label_space(cfg: Config) -> Optional[Tuple[int, int, str]]:
    """``(num_classes, ignore_index, where from)`` of the model's labels."""
    model = cfg.get('model') or {}
    if model.get('type') == 'SegTTAModel':  # tools/test.py --tta
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
    and gets a ``CheckSegLabels`` after ``LoadAnnotations`` (labels outside
    the model's classes that are not the ignore index); and
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
                _insert_label_check(steps, dict(
                    type='CheckSegLabels', num_classes=num_classes,
                    ignore_index=ignore_index, source=source))
            dataset['pipeline'] = [dict(type='NameFilesOnError',
                                        transforms=steps)]
    custom = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'CheckDataFilesHook' for h in custom):
        custom.append(dict(type='CheckDataFilesHook'))
    cfg.custom_hooks = custom


def _check(path: str, full: bool) -> None:
    try:
        check_checkpoint_file(path, full=full)
    except CheckpointFileError as err:
        raise SystemExit(str(err)) from None


def setup_train_run(cfg: Config, launcher: str, resume: bool) -> None:
    """Launcher, hooks and resume point for ``tools/train.py``.

    With ``resume`` and no ``load_from``, the run resumes from the newest
    complete checkpoint of ``work_dir`` (a truncated one is skipped with a
    warning naming it) or, if there is none, starts from scratch. Half-written
    ``*.pth.partial`` files of a killed run are deleted. A ``load_from``
    (fine-tuning, or resuming from a chosen file) is checked first: a
    missing or truncated file stops the run with its name.
    """
    setup_distributed(cfg, launcher)
    use_reliable_checkpoints(cfg)
    add_data_checks(cfg)
    cfg.resume = resume
    load_from: Optional[str] = cfg.get('load_from')
    if load_from:
        _check(load_from, full=resume)
    elif resume:
        found = find_resumable_checkpoint(cfg.work_dir)
        if found is None:
            print_log(f'--resume: no complete checkpoint in {cfg.work_dir}; '
                      'training from the start', logger='current',
                      level=logging.WARNING)
            cfg.resume = False  # mmengine would trust last_checkpoint
        else:
            print_log(f'--resume: resuming from {found}', logger='current')
        cfg.load_from = found
    if resume and is_main_process():
        remove_partial_checkpoints(cfg.work_dir)


def setup_test_run(cfg: Config, launcher: str,
                   checkpoint: Optional[str]) -> None:
    """Launcher, data checks and checkpoint check for ``tools/test.py``."""
    setup_distributed(cfg, launcher)
    add_data_checks(cfg)
    if checkpoint is not None:
        _check(checkpoint, full=False)
