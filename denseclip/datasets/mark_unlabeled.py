"""Hide the ground truth of chosen classes from training (MaskCLIP+)."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

UNLABELED_INDEX = 254


@TRANSFORMS.register_module()
class MarkUnlabeled(BaseTransform):
    """Replace the labels of ``classes`` in ``gt_seg_map`` with ``unlabeled_index``.

    MaskCLIP+ fills such pixels with pseudo labels: in transductive zero-shot
    training ``classes`` are the unseen classes, in annotation-free training
    all classes. Put it right after ``LoadAnnotations`` (after
    ``reduce_zero_label``), before any transform that moves pixels.
    ``ignore_index`` (255) pixels stay ignored.

    Required keys: ``gt_seg_map``. Modified keys: ``gt_seg_map``.
    """

    def __init__(self, classes: Sequence[int],
                 unlabeled_index: int = UNLABELED_INDEX):
        if not classes:
            raise ValueError('MarkUnlabeled needs at least one class index')
        self.classes = np.asarray(sorted(set(int(c) for c in classes)))
        if self.classes.min() < 0 or self.classes.max() >= unlabeled_index:
            raise ValueError(
                f'MarkUnlabeled: class indices must lie in [0, '
                f'{unlabeled_index}), got {self.classes.tolist()}')
        self.unlabeled_index = unlabeled_index

    def transform(self, results: dict) -> dict:
        seg = results['gt_seg_map']
        results['gt_seg_map'] = np.where(
            np.isin(seg, self.classes), self.unlabeled_index, seg).astype(
                seg.dtype)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(classes={self.classes.tolist()}, '
                f'unlabeled_index={self.unlabeled_index})')
