from .keep_undistorted import UNDISTORTED_KEY, KeepUndistortedImage
from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled

__all__ = ['KeepUndistortedImage', 'MarkUnlabeled', 'UNDISTORTED_KEY',
           'UNLABELED_INDEX']

# issue 9: bad data stops with the file named
from .check_seg_labels import BadLabelError, CheckSegLabels  # noqa: E402
from .name_files_on_error import NameFilesOnError, SampleError  # noqa: E402

__all__ += ['BadLabelError', 'CheckSegLabels', 'NameFilesOnError',
            'SampleError']
