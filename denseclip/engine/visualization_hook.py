"""mmseg's SegVisualizationHook, usable in a run that only tests.

mmseg 1.2.2's ``SegVisualizationHook`` names each painted image by
``step=runner.iter``. mmengine's ``Runner.iter`` reads ``runner.train_loop``,
which *builds* the training loop the first time it is read: its dataloader
and the training dataset. ``tools/test.py --show-dir`` on a test-only setup
(no ``images/training`` folder, the usual way to evaluate a released
checkpoint) therefore painted the first image and then died with
``FileNotFoundError: .../images/training`` from a test command.
"""
import os.path as osp
from typing import Sequence

import mmcv
import mmengine.fileio as fileio
from mmengine.config import Config
from mmengine.runner import BaseLoop
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

__all__ = ['StandaloneSegVisualizationHook', 'use_standalone_visualization']

# the stock hook's names (config type strings) that are swapped
_STOCK_VISUALIZATION_HOOKS = ('SegVisualizationHook',
                              'mmseg.SegVisualizationHook')


def current_iter(runner) -> int:
    """``runner.iter`` without building a training loop that has not been
    built: 0 in a run that only tests or validates (what ``runner.iter``
    returns there once it has built the loop), as mmengine's own
    ``LoggerHook`` does for its step."""
    loop = runner._train_loop  # a config dict until something builds it
    return loop.iter if isinstance(loop, BaseLoop) else 0


@HOOKS.register_module()
class StandaloneSegVisualizationHook(SegVisualizationHook):
    """``SegVisualizationHook`` (same arguments, same paintings: the ground
    truth and the prediction side by side, each over the image) that never
    builds the training loop: the step of a painted image is the training
    iteration when a training loop runs, else 0.

    ``tools/test.py`` puts it in place of the stock hook
    (:func:`use_standalone_visualization`); in your own configs use
    ``visualization=dict(type='StandaloneSegVisualizationHook')`` in
    ``default_hooks``.
    """

    def _after_iter(self, runner, batch_idx: int, data_batch: dict,
                    outputs: Sequence[SegDataSample],
                    mode: str = 'val') -> None:
        # mmseg 1.2.2's own _after_iter, with the step of current_iter()
        if self.draw is False or mode == 'train':
            return
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        step = current_iter(runner)
        for output in outputs:
            img_path = output.img_path
            img_bytes = fileio.get(img_path, backend_args=self.backend_args)
            img = mmcv.imfrombytes(img_bytes, channel_order='rgb')
            self._visualizer.add_datasample(
                f'{mode}_{osp.basename(img_path)}', img, data_sample=output,
                show=self.show, wait_time=self.wait_time, step=step)


def use_standalone_visualization(cfg: Config) -> None:
    """Swap mmseg's ``SegVisualizationHook`` in ``cfg.default_hooks`` for
    :class:`StandaloneSegVisualizationHook` (same arguments)."""
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is not None and hook.get('type') in _STOCK_VISUALIZATION_HOOKS:
        hook['type'] = 'StandaloneSegVisualizationHook'
