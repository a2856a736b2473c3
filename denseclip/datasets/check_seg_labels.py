"""Stop on label values the model cannot learn, naming the annotation file."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


class BadLabelError(ValueError):
    """An annotation holds labels outside ``[0, num_classes)`` that are not
    the ignore index."""


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Check ``gt_seg_map`` right after ``LoadAnnotations``.

    A label ``>= num_classes`` that is not ``ignore_index`` reaches the loss
    as an anonymous ``IndexError: Target 8 is out of bounds`` on the CPU, a
    device-side assert on CUDA, and is silently dropped by ``IoUMetric``.
    Here it is a :class:`BadLabelError` naming the annotation file, the
    values and the setting to check. Costs one comparison per pixel.

    ``tools/train.py`` and ``tools/test.py`` insert it after every
    ``LoadAnnotations`` with the model's ``decode_head.num_classes`` and
    ``ignore_index`` (``denseclip.engine.add_data_checks``).

    Required keys: ``gt_seg_map``, ``seg_map_path``.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 source: Optional[str] = None):
        if num_classes < 1:
            raise ValueError(f'CheckSegLabels: num_classes must be >= 1, got '
                             f'{num_classes}')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        # where num_classes came from, for the message
        self.source = source or f'num_classes={num_classes}'

    def transform(self, results: dict) -> dict:
        seg = results['gt_seg_map']
        bad = (seg >= self.num_classes) & (seg != self.ignore_index)
        if seg.dtype.kind == 'i':
            bad |= seg < 0
        if bad.any():
            values, counts = np.unique(seg[bad], return_counts=True)
            # reduce_zero_label turned on-disk k into k - 1
            disk = 1 if results.get('reduce_zero_label') else 0
            found = ', '.join(
                f'{v}{f" (on disk {v + disk})" if disk else ""}: {c} px'
                for v, c in zip(values.tolist()[:10], counts.tolist()[:10]))
            raise BadLabelError(
                f'annotation {results.get("seg_map_path")} has label values '
                f'outside [0, {self.num_classes}) that are not the ignore '
                f'index {self.ignore_index}: {found}. The model has '
                f'{self.source}; check the dataset\'s classes, its '
                'reduce_zero_label and this annotation')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
