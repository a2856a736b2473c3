from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled

__all__ = ['MarkUnlabeled', 'UNLABELED_INDEX']

# issue 9: bad data stops with the file named
from .check_seg_labels import BadLabelError, CheckSegLabels  # noqa: E402
from .name_files_on_error import NameFilesOnError, SampleError  # noqa: E402

__all__ += ['BadLabelError', 'CheckSegLabels', 'NameFilesOnError',
            'SampleError']

# issue 13: robustness under input corruptions
from .corrupt import (CORRUPTIONS, REFERENCE_CORRUPTIONS,  # noqa: E402
                      Corrupt, corrupt_image)

__all__ += ['CORRUPTIONS', 'Corrupt', 'REFERENCE_CORRUPTIONS',
            'corrupt_image']
