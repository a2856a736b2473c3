from .check_seg_labels import (AnnotationShapeError, BadLabelError,
                               CheckSegLabels)
from .coco_object import COCOObjectDataset
from .corrupt import (CORRUPTIONS, REFERENCE_CORRUPTIONS, Corrupt,
                      corrupt_image)
from .image_folder import (IMAGE_EXTENSIONS, ImageFolderDataset,
                           UnreadableImageError, list_images, read_image,
                           why_unreadable)
from .keep_undistorted import UNDISTORTED_KEY, KeepUndistortedImage
from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled
from .name_files_on_error import NameFilesOnError, SampleError
from .unlabeled_seg_map import UnlabeledSegMap

__all__ = [
    'AnnotationShapeError', 'BadLabelError', 'CheckSegLabels',
    'COCOObjectDataset', 'CORRUPTIONS', 'REFERENCE_CORRUPTIONS', 'Corrupt',
    'corrupt_image', 'KeepUndistortedImage', 'UNDISTORTED_KEY',
    'MarkUnlabeled', 'UNLABELED_INDEX', 'NameFilesOnError',
    'SampleError', 'IMAGE_EXTENSIONS', 'ImageFolderDataset', 'list_images',
    'read_image', 'UnreadableImageError', 'why_unreadable', 'UnlabeledSegMap'
]
