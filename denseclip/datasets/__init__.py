from .check_seg_labels import (AnnotationShapeError, BadLabelError,
                               CheckSegLabels)
from .coco_object import COCOObjectDataset
from .corrupt import (CORRUPTIONS, REFERENCE_CORRUPTIONS, Corrupt,
                      corrupt_image)
from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled
from .name_files_on_error import NameFilesOnError, SampleError

__all__ = [
    'AnnotationShapeError', 'BadLabelError', 'CheckSegLabels',
    'COCOObjectDataset', 'CORRUPTIONS', 'REFERENCE_CORRUPTIONS', 'Corrupt',
    'corrupt_image', 'MarkUnlabeled', 'UNLABELED_INDEX', 'NameFilesOnError',
    'SampleError'
]
