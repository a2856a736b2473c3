"""What ``tools/train.py`` and ``tools/test.py`` do to a config before the runner.

One place for the launcher, checkpoint and data logic both tools share: the
CPU distributed set-up (:mod:`.cpu_distributed`), checkpoints that survive a
kill (:class:`.AtomicCheckpointHook`, :class:`.RandomStateHook`),
``--resume`` from the newest *complete* checkpoint, data checks that name
the file at fault (:func:`add_data_checks`) or the split that lists nothing
(:func:`check_splits_have_samples`), and, for testing, a checkpoint that
must hold the model's weights (:class:`CheckpointFitHook`) and painting
that never builds the training set (:class:`StandaloneSegVisualizationHook`).
"""
import logging
from typing import Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log

from .checkpoint_files import (CheckpointFileError, check_checkpoint_file,
                               find_resumable_checkpoint,
                               remove_partial_checkpoints)
from .cpu_distributed import setup_distributed
from .data_checks import add_data_checks
from .empty_splits import check_splits_have_samples
from .visualization_hook import use_standalone_visualization

__all__ = ['setup_test_run', 'setup_train_run', 'use_reliable_checkpoints']

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
    missing or truncated file stops the run with its name. So does an empty
    training or validation split (:class:`EmptySplitError`).
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
    check_splits_have_samples(
        cfg, ['train_dataloader'] +
        (['val_dataloader'] if cfg.get('val_cfg') else []))


def setup_test_run(cfg: Config, launcher: str, checkpoint: Optional[str],
                   allow_partial_checkpoint: bool = False) -> None:
    """Launcher, data checks and checkpoint checks for ``tools/test.py``.

    A missing or truncated ``checkpoint`` stops here; one that leaves any
    model tensor as initialised stops when the runner loads it
    (:class:`CheckpointFitHook`: ``CheckpointFitError``), or with
    ``allow_partial_checkpoint`` is a warning. An empty test split stops
    here (:class:`EmptySplitError`). mmseg's ``SegVisualizationHook``
    becomes :class:`StandaloneSegVisualizationHook` (``--show-dir`` would
    otherwise build the training set).
    """
    setup_distributed(cfg, launcher)
    add_data_checks(cfg)
    use_standalone_visualization(cfg)
    if checkpoint is not None:
        _check(checkpoint, full=False)
        custom = [h for h in cfg.get('custom_hooks') or []
                  if h.get('type') != 'CheckpointFitHook']
        custom.append(dict(type='CheckpointFitHook', filename=checkpoint,
                           allow_partial=allow_partial_checkpoint))
        cfg.custom_hooks = custom
    check_splits_have_samples(cfg, ['test_dataloader'])
