"""mIoU of seen and unseen classes, for transductive zero-shot segmentation."""
from typing import Dict, Sequence

import numpy as np
from mmengine.logging import print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ZeroShotIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` plus ``mIoU_seen``, ``mIoU_unseen`` and their
    harmonic mean ``hIoU`` (the zero-shot papers' numbers).

    Args:
        unseen_classes: label indices of the unseen classes; every other class
            (background included) is seen.
    """

    def __init__(self, unseen_classes: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.unseen_classes = sorted(int(c) for c in unseen_classes)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        intersect = sum(r[0] for r in results).numpy()
        union = sum(r[1] for r in results).numpy()
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = intersect / union
        unseen = np.zeros(len(iou), bool)
        unseen[self.unseen_classes] = True
        seen_miou = float(np.round(np.nanmean(iou[~unseen]) * 100, 2))
        unseen_miou = float(np.round(np.nanmean(iou[unseen]) * 100, 2))
        total = seen_miou + unseen_miou
        hiou = round(2 * seen_miou * unseen_miou / total, 2) if total else 0.
        metrics.update(mIoU_seen=seen_miou, mIoU_unseen=unseen_miou,
                       hIoU=hiou)
        names = self.dataset_meta['classes']
        print_log(
            f'unseen classes {[names[c] for c in self.unseen_classes]}: '
            f'mIoU(seen) {seen_miou}, mIoU(unseen) {unseen_miou}, hIoU {hiou}',
            logger='current')
        return metrics
