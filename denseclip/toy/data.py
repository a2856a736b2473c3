"""Small synthetic segmentation datasets in real on-disk layouts.

Each image is a textured background with a few coloured shapes; a shape's
class is given by its colour and form, so a small network learns the task in
minutes on a CPU. Layouts:

* ``'ade'``: ADE20K (``images/{training,validation}/*.jpg``,
  ``annotations/{training,validation}/*.png``; label 0 is "other" and is
  ignored with ``reduce_zero_label=True``, class ``k`` is written as ``k + 1``).
* ``'voc'``: Pascal VOC 2012 (``JPEGImages``, ``SegmentationClass``,
  ``ImageSets/Segmentation/{train,val}.txt``; 0 is background, class ``k`` of
  :data:`TOY_CLASSES` after the first is written as ``k``, 255 marks the
  boundaries around objects as in VOC).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

# class 0 is the background texture; the others are shapes
TOY_CLASSES = ('textured background', 'red disc', 'green square',
               'blue triangle', 'yellow ring')
TOY_PALETTE = [[120, 120, 120], [220, 40, 40], [40, 180, 40], [40, 60, 220],
               [230, 210, 40]]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Grey-ish low-frequency noise plus grain, with a random tint."""
    small = rng.uniform(60, 190, size=(max(h // 16, 2), max(w // 16, 2), 1))
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    img = img + rng.normal(0, 12, size=(h, w, 1)) + rng.uniform(-15, 15, 3)
    return np.clip(img, 0, 255)


def _draw_shape(img: np.ndarray, label: np.ndarray, cls: int,
                rng: np.random.Generator) -> None:
    h, w = label.shape
    size = int(rng.uniform(0.12, 0.25) * min(h, w))
    cx = int(rng.uniform(size, w - size))
    cy = int(rng.uniform(size, h - size))
    mask = np.zeros((h, w), np.uint8)
    if cls == 1:
        cv2.circle(mask, (cx, cy), size, 1, -1)
    elif cls == 2:
        cv2.rectangle(mask, (cx - size, cy - size), (cx + size, cy + size), 1,
                      -1)
    elif cls == 3:
        pts = np.array([[cx, cy - size], [cx - size, cy + size],
                        [cx + size, cy + size]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    else:
        cv2.circle(mask, (cx, cy), size, 1, -1)
        cv2.circle(mask, (cx, cy), max(size // 2, 1), 0, -1)
    color = np.array(TOY_PALETTE[cls], np.float64) + rng.normal(0, 15, 3)
    shade = rng.normal(0, 10, size=(h, w, 1))
    on = mask.astype(bool)
    img[on] = np.clip(color + shade[on], 0, 255)
    label[on] = cls


def draw_toy_scene(
        rng: np.random.Generator,
        size: Tuple[int, int],
        num_shapes: Optional[int] = None
) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """A textured background with shapes drawn on it, one after the other.

    Returns the RGB image ``[H, W, 3]`` uint8, its class map of
    :data:`TOY_CLASSES` and the classes of the shapes in the order they were
    drawn (a later shape may cover an earlier one). ``num_shapes`` (0 for the
    background alone) defaults to 1 to 3 at random.
    """
    h, w = size
    img = _background(rng, h, w)  # [H, W, 3] float
    label = np.zeros((h, w), np.uint8)
    if num_shapes is None:
        num_shapes = rng.integers(1, 4)
    drawn = []
    for _ in range(num_shapes):
        cls = int(rng.integers(1, len(TOY_CLASSES)))
        _draw_shape(img, label, cls, rng)
        drawn.append(cls)
    return img.astype(np.uint8), label, drawn


def make_toy_sample(rng: np.random.Generator,
                    size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """One RGB image ``[H, W, 3]`` uint8 and its class map of :data:`TOY_CLASSES`."""
    img, label, _ = draw_toy_scene(rng, size)
    return img, label


def _voc_boundaries(label: np.ndarray) -> np.ndarray:
    """VOC marks a thin band around each object as 255 (ignored)."""
    out = label.copy()
    edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, np.ones((3, 3)))
    out[edges > 0] = 255
    return out


def make_toy_dataset(root: str,
                     layout: str = 'ade',
                     num_train: int = 200,
                     num_val: int = 40,
                     train_size: Tuple[int, int] = (128, 128),
                     val_size: Tuple[int, int] = (120, 150),
                     seed: int = 0) -> Dict[str, int]:
    """Write a toy dataset under ``root`` in the ``layout`` of a real dataset.

    Validation images have a size not divisible by 32 on purpose. Re-running
    with the same arguments writes the same files. Returns the number of
    images per split.
    """
    if layout not in ('ade', 'voc'):
        raise ValueError(f"layout must be 'ade' or 'voc', got {layout!r}")
    rng = np.random.default_rng(seed)
    counts = {}
    for split, num, size in (('train', num_train, train_size),
                             ('val', num_val, val_size)):
        names = []
        for i in range(num):
            img, label = make_toy_sample(rng, size)
            if layout == 'ade':
                folder = 'training' if split == 'train' else 'validation'
                # ADE20K's own names: ADE_train_00000001, ADE_val_00000001
                name = f'ADE_{split}_{i + 1:08d}'
                img_path = osp.join(root, 'images', folder, name + '.jpg')
                ann_path = osp.join(root, 'annotations', folder, name + '.png')
                ann = label + 1
            else:
                name = f'2007_{split}{i:06d}'
                img_path = osp.join(root, 'JPEGImages', name + '.jpg')
                ann_path = osp.join(root, 'SegmentationClass', name + '.png')
                ann = _voc_boundaries(label)
            for path in (img_path, ann_path):
                os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(img_path, img[..., ::-1],
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(ann_path, ann)
            names.append(name)
        if layout == 'voc':
            sets = osp.join(root, 'ImageSets', 'Segmentation')
            os.makedirs(sets, exist_ok=True)
            with open(osp.join(sets, f'{split}.txt'), 'w') as f:
                f.write('\n'.join(names) + '\n')
        counts[split] = num
    return counts
