"""A folder of images and nothing else: MaskCLIP+ on your own (web) images,
and the demos' folders. Reading an image says why it cannot be read."""
import io
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

# what the folder is searched for (case-insensitive)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class UnreadableImageError(OSError):
    """An image file that cannot be decoded; ``reason`` says why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f'cannot read image {path}: {reason}')
        self.path = path
        self.reason = reason


def _why_not_decoded(data: bytes) -> str:
    """Why OpenCV decoded nothing from ``data``: asks PIL, which tells a
    truncated file from one that is not an image."""
    from PIL import Image, UnidentifiedImageError
    kind = ''
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = f'{image.format} ' if image.format else ''
            image.load()
    except UnidentifiedImageError:
        return 'not an image file (or a format neither OpenCV nor PIL reads)'
    except (OSError, SyntaxError, ValueError) as err:
        if 'truncated' in str(err).lower():
            return f'truncated: the {kind}file ends early (PIL: {err})'
        return f'a damaged {kind}file (PIL: {err})'
    return f'a {kind}file OpenCV cannot decode'


def read_image(path: str) -> np.ndarray:
    """The image at ``path`` as mmseg's ``LoadImageFromFile`` reads it
    (mmcv, OpenCV, BGR, ``[H, W, 3]``).

    Raises:
        UnreadableImageError: saying why (truncated, empty, not an image,
            a format OpenCV cannot decode), as PIL tells it.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise UnreadableImageError(path, err.strerror or str(err)) from err
    if not data:
        raise UnreadableImageError(path, 'an empty file')
    image = mmcv.imfrombytes(data, flag='color', backend='cv2')
    if image is None:
        raise UnreadableImageError(path, _why_not_decoded(data))
    return image


def why_unreadable(path: str) -> Optional[str]:
    """None if :func:`read_image` reads ``path``, else the reason."""
    try:
        read_image(path)
    except UnreadableImageError as err:
        return err.reason
    return None


def list_images(folder: str,
                extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[str]:
    """Sorted paths of the images under ``folder`` (sub-folders included;
    hidden files and folders skipped; extensions matched in any case)."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'image folder {folder} does not exist')
    wanted = tuple(e.lower() for e in extensions)
    found = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        found += [osp.join(root, n) for n in names
                  if not n.startswith('.') and n.lower().endswith(wanted)]
    return sorted(found)


@DATASETS.register_module()
class ImageFolderDataset(BaseSegDataset):
    """Every image under ``data_prefix['img_path']``, without annotations.

    MaskCLIP+'s annotation-free training on images that have no annotation
    file at all (the reference's ``WebImageDataset``): the samples carry no
    ``seg_map_path``; put ``UnlabeledSegMap`` after ``LoadImageFromFile`` in
    the pipeline so that each gets a map of its size that is unlabeled
    everywhere, and the teacher labels every pixel. ``metainfo`` gives the
    class names (free text). Any of ``img_suffix`` counts as an image, in
    any case; an empty folder is an error naming it. ``exclude``: images
    left out, relative to the folder (``tools/maskclip_plus_folder.py``
    puts the unreadable ones there).
    """

    def __init__(self,
                 img_suffix: Sequence[str] = IMAGE_EXTENSIONS,
                 exclude: Sequence[str] = (),
                 **kwargs):
        if isinstance(img_suffix, str):
            img_suffix = (img_suffix, )
        if isinstance(exclude, str):
            exclude = (exclude, )
        self.exclude = tuple(exclude)
        super().__init__(img_suffix=tuple(img_suffix), **kwargs)

    def load_data_list(self) -> List[dict]:
        folder = self.data_prefix.get('img_path')
        if not folder:
            raise ValueError('ImageFolderDataset: give the image folder as '
                             'data_prefix=dict(img_path=...)')
        if self.data_prefix.get('seg_map_path') or self.ann_file:
            raise ValueError(
                'ImageFolderDataset reads images only; for annotations use '
                'BaseSegDataset (data_prefix.seg_map_path, ann_file) with '
                'MarkUnlabeled')
        found = list_images(folder, self.img_suffix)
        left_out = {osp.normpath(osp.join(folder, p)) for p in self.exclude}
        images = [p for p in found if osp.normpath(p) not in left_out]
        if not images:
            raise ValueError(
                f'ImageFolderDataset: no image ({", ".join(self.img_suffix)}) '
                f'under {folder}'
                f'{f" (its {len(found)} are all excluded)" if found else ""}')
        return [dict(img_path=path, label_map=None, reduce_zero_label=False,
                     seg_fields=[]) for path in images]
