"""A folder of images and nothing else: MaskCLIP+ on your own (web) images."""
import os
import os.path as osp
from typing import List, Sequence

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

# what the folder is searched for (case-insensitive)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


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
    any case; an empty folder is an error naming it.
    """

    def __init__(self,
                 img_suffix: Sequence[str] = IMAGE_EXTENSIONS,
                 **kwargs):
        if isinstance(img_suffix, str):
            img_suffix = (img_suffix, )
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
        images = list_images(folder, self.img_suffix)
        if not images:
            raise ValueError(
                f'ImageFolderDataset: no image ({", ".join(self.img_suffix)}) '
                f'under {folder}')
        return [dict(img_path=path, label_map=None, reduce_zero_label=False,
                     seg_fields=[]) for path in images]
