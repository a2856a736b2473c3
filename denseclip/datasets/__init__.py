from .check_seg_labels import (AnnotationShapeError, BadLabelError,
                               CheckSegLabels)
from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled
from .name_files_on_error import NameFilesOnError, SampleError

__all__ = [
    'AnnotationShapeError', 'BadLabelError', 'CheckSegLabels', 'MarkUnlabeled',
    'NameFilesOnError', 'SampleError', 'UNLABELED_INDEX'
]
