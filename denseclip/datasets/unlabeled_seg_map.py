"""A ground-truth map that is unlabeled everywhere, for images without annotations."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .mark_unlabeled import UNLABELED_INDEX


@TRANSFORMS.register_module()
class UnlabeledSegMap(BaseTransform):
    """Give the image a ``gt_seg_map`` of its size, ``unlabeled_index`` everywhere.

    Takes the place of ``LoadAnnotations`` + ``MarkUnlabeled`` when there is
    no annotation file at all (``ImageFolderDataset``): MaskCLIP+ then
    pseudo-labels every pixel. Put it right after ``LoadImageFromFile``; the
    geometric transforms that follow move the map with the image, and the
    padding they or the data preprocessor add is ignored (255).

    Required keys: ``img``. Added keys: ``gt_seg_map`` (uint8), ``seg_fields``.
    """

    def __init__(self, unlabeled_index: int = UNLABELED_INDEX):
        if not 0 <= unlabeled_index < 255:
            raise ValueError(f'UnlabeledSegMap: unlabeled_index must lie in '
                             f'[0, 255), got {unlabeled_index}')
        self.unlabeled_index = unlabeled_index

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        results['gt_seg_map'] = np.full((height, width), self.unlabeled_index,
                                        np.uint8)
        fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in fields:
            fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(unlabeled_index={self.unlabeled_index})'
