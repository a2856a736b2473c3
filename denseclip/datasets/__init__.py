from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled

__all__ = ['MarkUnlabeled', 'UNLABELED_INDEX']

# issue 9: bad data stops with the file named
from .check_seg_labels import BadLabelError, CheckSegLabels  # noqa: E402
from .name_files_on_error import NameFilesOnError, SampleError  # noqa: E402

__all__ += ['BadLabelError', 'CheckSegLabels', 'NameFilesOnError',
            'SampleError']
from .coco_object import COCOObjectDataset  # noqa: E402,F401  (issue 14)
