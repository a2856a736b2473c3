"""COCO-Object: COCO-Stuff 164k's images with only the 80 thing classes.

The benchmark of the training-free open-vocabulary protocol (GroupViT, TCL,
SCLIP, ClearCLIP, NACLIP): label 0 is background (every stuff class, and
COCO-Stuff's unlabeled pixels), labels 1..80 are COCO's things in COCO-Stuff's
order. The label maps are made from COCO-Stuff 164k's by
``tools/dataset_converters/coco_object.py`` and written beside them as
``<image id>_instanceTrainIds.png`` (the references' file names), so the
dataset shares COCO-Stuff's ``data_root`` and image folders.
"""
from mmseg.datasets import BaseSegDataset, COCOStuffDataset
from mmseg.registry import DATASETS

_THINGS = COCOStuffDataset.METAINFO['classes'][:80]
_THING_COLOURS = COCOStuffDataset.METAINFO['palette'][:80]


@DATASETS.register_module()
class COCOObjectDataset(BaseSegDataset):
    """COCO-Object: background + COCO's 80 things (81 classes).

    Images ``<id>.jpg`` and label maps ``<id>_instanceTrainIds.png`` are
    paired by name, as for mmseg's ``COCOStuffDataset``; the things' names
    and colours are COCO-Stuff's (mmseg's), background is black.
    """
    METAINFO = dict(
        classes=('background', ) + tuple(_THINGS),
        palette=[[0, 0, 0]] + [list(c) for c in _THING_COLOURS])

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '_instanceTrainIds.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
