"""mmengine's ``TestLoop`` for batches of images of different sizes."""
import logging
from typing import Sequence

import torch
from mmengine.config import Config
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmengine.runner.loops import _update_losses
from mmseg.registry import LOOPS

from .size_groups import run_in_size_groups

__all__ = ['SizeGroupedTestLoop', 'use_size_grouped_test_loop']

# the test loops that run a loader batch through test_step in one call
_PLAIN_TEST_LOOPS = ('TestLoop', 'mmengine.TestLoop')


@LOOPS.register_module()
class SizeGroupedTestLoop(TestLoop):
    """``TestLoop`` whose loader batches may hold images of several sizes.

    Each batch is split into groups of images of one size
    (:func:`~denseclip.engine.size_groups.split_by_image_size`, also with
    ``TestTimeAug``'s batches) and ``model.test_step`` runs once per group;
    the outputs go to the evaluator and the hooks in the loader's order, as
    one iteration. Images of one size go through the model together, so
    predictions equal those of batch size 1 (nothing is padded, sorted or
    dropped; a batched convolution may round logits differently, by about
    1e-6 on a CPU). ``tools/test.py --batch-size N`` switches a plain ``TestLoop``
    to it (:func:`use_size_grouped_test_loop`); in a config:
    ``test_cfg = dict(type='SizeGroupedTestLoop')`` with
    ``test_dataloader = dict(batch_size=N, ...)``.
    """
    images = 0  # of the last run
    model_calls = 0

    def run(self) -> dict:
        self.images = self.model_calls = 0
        metrics = super().run()
        batch_size = getattr(self.dataloader, 'batch_size', None)
        world = get_world_size()
        where = f' in this process (1 of {world})' if world > 1 else ''
        print_log(
            f'{type(self).__name__}: {self.images} images in '
            f'{len(self.dataloader)} loader batches of up to {batch_size}'
            f'{where}, {self.model_calls} test_step calls (one per image '
            'size in a batch)', logger='current')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)

        def step(batch):
            with autocast(enabled=self.fp16):
                return self.runner.model.test_step(batch)

        def collect(outputs):
            outputs, self.test_loss = _update_losses(outputs, self.test_loss)
            return outputs

        outputs, calls = run_in_size_groups(step, data_batch, collect)
        self.images += len(outputs)
        self.model_calls += calls
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_test_iter', batch_idx=idx, data_batch=data_batch,
            outputs=outputs)


def use_size_grouped_test_loop(cfg: Config) -> bool:
    """Make a test loader batch of more than one image work for images of
    different sizes: the config's plain ``TestLoop`` (or none, which means
    it) becomes :class:`SizeGroupedTestLoop`. Returns whether it did; any
    other loop is kept, with a warning (it must group sizes itself)."""
    batch_size = cfg.test_dataloader.get('batch_size', 1)
    loop = cfg.get('test_cfg') or {}
    kind = loop.get('type', 'TestLoop')
    if kind == SizeGroupedTestLoop.__name__ or kind is SizeGroupedTestLoop:
        return False
    if kind not in _PLAIN_TEST_LOOPS and kind is not TestLoop:
        print_log(
            f'test_dataloader.batch_size={batch_size}: test_cfg.type={kind!r} '
            'is kept; it must itself handle batches of images of different '
            "sizes (mmseg's SegDataPreProcessor refuses them), as "
            'SizeGroupedTestLoop does', logger='current',
            level=logging.WARNING)
        return False
    cfg.test_cfg = dict(loop, type=SizeGroupedTestLoop.__name__)
    print_log(
        f'test_dataloader.batch_size={batch_size}: test_cfg {kind} -> '
        'SizeGroupedTestLoop (each batch run as groups of images of one size; '
        'the same predictions as batch size 1)', logger='current')
    return True
