"""Class names per dataset as MaskCLIP's reference prompts them (plain
words: ``'airplane'``, ``'potted plant'``), and the readers of class names
from lists, dataset names and files (docs/maskclip.md)."""
from typing import List, Optional, Sequence, Union

from mmseg.utils import get_classes

from .class_names import ClassNames, read_class_name_sets

VOC20 = (
    'airplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'person',
    'potted plant', 'sheep', 'sofa', 'train', 'tv monitor')

PASCAL_CONTEXT59 = (
    'airplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle', 'bird', 'boat',
    'book', 'bottle', 'building', 'bus', 'cabinet', 'car', 'cat', 'ceiling',
    'chair', 'cloth', 'computer', 'cow', 'cup', 'curtain', 'dog', 'door',
    'fence', 'floor', 'flower', 'food', 'grass', 'ground', 'horse', 'keyboard',
    'light', 'motorbike', 'mountain', 'mouse', 'person', 'plate', 'platform',
    'potted plant', 'road', 'rock', 'sheep', 'shelves', 'sidewalk', 'sign',
    'sky', 'snow', 'sofa', 'table', 'track', 'train', 'tree', 'truck',
    'tv monitor', 'wall', 'water', 'window', 'wood')

COCO_STUFF171 = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush', 'banner', 'blanket', 'branch', 'bridge',
    'building', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet', 'ceiling',
    'tile ceiling', 'cloth', 'clothes', 'clouds', 'counter', 'cupboard',
    'curtain', 'desk', 'dirt', 'door', 'fence', 'marble floor', 'floor',
    'stone floor', 'tile floor', 'wood floor', 'flower', 'fog', 'food',
    'fruit', 'furniture', 'grass', 'gravel', 'ground', 'hill', 'house',
    'leaves', 'light', 'mat', 'metal', 'mirror', 'moss', 'mountain', 'mud',
    'napkin', 'net', 'paper', 'pavement', 'pillow', 'plant', 'plastic',
    'platform', 'playingfield', 'railing', 'railroad', 'river', 'road', 'rock',
    'roof', 'rug', 'salad', 'sand', 'sea', 'shelf', 'sky', 'skyscraper',
    'snow', 'solid', 'stairs', 'stone', 'straw', 'structural', 'table', 'tent',
    'textile', 'towel', 'tree', 'vegetable', 'brick wall', 'concrete wall',
    'wall', 'panel wall', 'stone wall', 'tile wall', 'wood wall', 'water',
    'waterdrops', 'blind window', 'window', 'wood')

# dataset name (as in configs and mmseg's aliases) -> prompt names
_TABLES = {
    'voc20': VOC20,
    'pascal_voc20': VOC20,
    'voc12aug_20': VOC20,
    'pascal_context59': PASCAL_CONTEXT59,
    'pascal_context_59': PASCAL_CONTEXT59,
    'context59': PASCAL_CONTEXT59,
    'coco_stuff': COCO_STUFF171,
    'coco-stuff': COCO_STUFF171,
    'coco_stuff164k': COCO_STUFF171,
    'coco-stuff164k': COCO_STUFF171,
    'cocostuff': COCO_STUFF171,
}

# a dataset name, a .txt file, or one entry per class (a name or synonyms)
ClassNamesSpec = Union[str, Sequence[Union[str, Sequence[str]]]]


def read_class_name_file(path: str) -> List[str]:
    """One name per class from a class-name file
    (:func:`~.class_names.read_class_name_sets`); a line with synonyms is an
    error naming it: use :func:`resolve_class_name_sets` where they are
    taken."""
    return read_class_name_sets(path).single_names()


def dataset_names() -> List[str]:
    """Names :func:`resolve_class_names` accepts besides mmseg's ``get_classes``."""
    return sorted(_TABLES)


def resolve_class_name_sets(spec: Union[ClassNamesSpec, ClassNames]
                            ) -> ClassNames:
    """Class names, each with its synonyms, from a list, a dataset name or a
    text file.

    * a list or tuple: one entry per class, a name or a list of synonyms;
    * a dataset name: MaskCLIP's prompt names above (``'voc20'``,
      ``'pascal_context59'``, ``'coco_stuff164k'`` ...), else mmseg's
      ``get_classes`` (``'ade'``, ``'cityscapes'``, ``'voc'`` ...);
    * a ``.txt`` file: one class per line, synonyms separated by commas
      (:func:`~.class_names.read_class_name_sets`).
    """
    if isinstance(spec, ClassNames):
        return spec
    if isinstance(spec, str):
        if spec.endswith('.txt'):
            return read_class_name_sets(spec)
        if spec in _TABLES:
            return ClassNames(list(_TABLES[spec]), spec)
        try:
            return ClassNames(list(get_classes(spec)), spec)
        except ValueError:
            raise ValueError(
                f'unknown class set {spec!r}: give a list of names, a '
                f'.txt file with one class per line, one of '
                f'{", ".join(dataset_names())} or a dataset known to '
                f'mmseg.utils.get_classes') from None
    entries = list(spec)
    if all(isinstance(entry, str) for entry in entries):
        entries = check_class_names(entries, 'the class list')
    return ClassNames(entries, 'the class list')


def resolve_class_names(spec: ClassNamesSpec) -> List[str]:
    """One name per class from a list, a dataset name or a text file (as
    :func:`resolve_class_name_sets`; synonyms are an error), checked by
    :func:`check_class_names`."""
    names = resolve_class_name_sets(spec)
    return check_class_names(names.single_names(), names.source)


def check_class_names(names: Sequence[str],
                      source: str = 'the class list',
                      num_classes: Optional[int] = None,
                      owner: str = '',
                      names_option: str = 'class_names',
                      count_option: str = 'num_classes') -> List[str]:
    """The names stripped of surrounding white space, checked.

    An empty list, an empty name, a name given twice or (with
    ``num_classes``) a count other than the model's is a ``ValueError``
    naming ``source``, the position and the config options to fix
    (``names_option``: where the names come from, ``count_option``: the
    model's class count). Every model here checks its class names this way.
    """
    prefix = f'{owner}: ' if owner else ''
    fix = (f"{names_option} (or the dataset's metainfo classes, which "
           f'ClassNamesHook gives) must name each class once, in label order')
    names = [str(n).strip() for n in names]
    if not names:
        raise ValueError(f'{prefix}{source} holds no class names; {fix}')
    first = {}
    for i, name in enumerate(names):
        if not name:
            raise ValueError(
                f'{prefix}class {i} of {source} is an empty name; {fix}')
        if name in first:
            raise ValueError(
                f'{prefix}class name {name!r} is class {first[name]} and '
                f'class {i} of {source}; {fix}')
        first[name] = i
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(
            f'{prefix}{len(names)} class names but num_classes={num_classes} '
            f'({count_option}); {fix}')
    return names
