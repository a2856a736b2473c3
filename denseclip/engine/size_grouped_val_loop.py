"""mmengine's ``ValLoop`` for batches of images of different sizes."""
from typing import Sequence

import torch
from mmengine.runner import ValLoop
from mmengine.runner.amp import autocast
from mmengine.runner.loops import _update_losses
from mmseg.registry import LOOPS

from .size_groups import run_in_size_groups

__all__ = ['SizeGroupedValLoop']


@LOOPS.register_module()
class SizeGroupedValLoop(ValLoop):
    """``ValLoop`` whose loader batches may hold images of several sizes
    (validation during training with ``val_dataloader.batch_size > 1``):
    ``model.val_step`` runs once per group of images of one size, the
    outputs in the loader's order, as :class:`SizeGroupedTestLoop` does for
    testing. In a config: ``val_cfg = dict(type='SizeGroupedValLoop')``.
    """

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        self.runner.call_hook(
            'before_val_iter', batch_idx=idx, data_batch=data_batch)

        def step(batch):
            with autocast(enabled=self.fp16):
                return self.runner.model.val_step(batch)

        def collect(outputs):
            outputs, self.val_loss = _update_losses(outputs, self.val_loss)
            return outputs

        outputs, _ = run_in_size_groups(step, data_batch, collect)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_val_iter', batch_idx=idx, data_batch=data_batch,
            outputs=outputs)
