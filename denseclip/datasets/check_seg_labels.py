"""Stop on an annotation that does not fit its image or the model, naming it."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


class BadLabelError(ValueError):
    """An annotation holds labels outside ``[0, num_classes)`` that are not
    the ignore index, or does not fit its image."""


class AnnotationShapeError(BadLabelError):
    """An annotation has more than one channel, or another size than its
    image."""


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Check ``gt_seg_map`` right after ``LoadAnnotations``.

    Shape: one channel of class indices, the size of its image
    (``ori_shape``: test pipelines load annotations after ``Resize``).
    Otherwise mmseg's ``IoUMetric`` fails with ``IndexError: The shape of
    the mask [61, 78] ... does not match ...`` or ``too many indices``, and
    training with a crop of the wrong pixels. Values (with ``num_classes``):
    a label ``>= num_classes`` that is not ``ignore_index`` reaches the loss
    as an anonymous ``IndexError: Target 8 is out of bounds`` on the CPU, a
    device-side assert on CUDA, and is silently dropped by ``IoUMetric``.
    Either is an error naming the annotation (and its image). Costs one
    comparison per pixel (the shape check: none).

    ``tools/train.py`` and ``tools/test.py`` insert it after every
    ``LoadAnnotations`` with the model's ``decode_head.num_classes`` and
    ``ignore_index`` (``denseclip.engine.add_data_checks``).

    Required keys: ``gt_seg_map``, ``seg_map_path``; ``ori_shape`` and
    ``img_path`` when present.
    """

    def __init__(self, num_classes: Optional[int] = None,
                 ignore_index: int = 255, source: Optional[str] = None):
        if num_classes is not None and num_classes < 1:
            raise ValueError(f'CheckSegLabels: num_classes must be >= 1, got '
                             f'{num_classes}')
        self.num_classes = None if num_classes is None else int(num_classes)
        self.ignore_index = int(ignore_index)
        # where num_classes came from, for the message
        self.source = source or f'num_classes={num_classes}'

    @staticmethod
    def check_shape(results: dict) -> None:
        """Raise :class:`AnnotationShapeError` unless ``gt_seg_map`` is one
        channel of its image's height and width."""
        seg = results['gt_seg_map']
        image = results.get('ori_shape')
        ann = f'annotation {results.get("seg_map_path")}'
        of_image = (f'its image {results.get("img_path")} has shape '
                    f'{tuple(image)}' if image is not None else '')
        if seg.ndim != 2:
            raise AnnotationShapeError(
                f'{ann} has shape {tuple(seg.shape)}: {seg.shape[-1]} '
                f'channels{" (" + of_image + ")" if image else ""}. An '
                'annotation must be one channel of class indices (a grayscale '
                'or palette PNG whose value k is class k); convert a colour '
                '(RGB) annotation to class indices, e.g. by mapping each '
                'palette colour to its class')
        if image is not None and tuple(seg.shape) != tuple(image[:2]):
            # OpenCV turns a JPEG by its EXIF orientation tag; a PNG has none
            turned = (' The image\'s height and width are the annotation\'s '
                      'width and height: a photo with an EXIF orientation '
                      'tag, which OpenCV applies when it reads the image; '
                      'remove the tag or turn the annotation the same way.'
                      if tuple(seg.shape) == tuple(image[1::-1]) else '')
            raise AnnotationShapeError(
                f'{ann} has shape {tuple(seg.shape)} but {of_image} (height, '
                f'width).{turned} Each annotation must have the size of its '
                'image: check that the two belong together, or write the '
                'annotation again at the image\'s size (nearest-neighbour)')

    def transform(self, results: dict) -> dict:
        self.check_shape(results)
        if self.num_classes is None:
            return results
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
