"""An annotation of another size or channel count than its image stops
training and evaluation with the annotation, its image and both shapes
named (CheckSegLabels, which add_data_checks puts after LoadAnnotations)."""
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmengine.runner import Runner
from mmseg.registry import TRANSFORMS
from tiny_runner import runner_cfg, write_dataset

from denseclip.datasets import AnnotationShapeError
from denseclip.engine import add_data_checks, setup_train_run
from denseclip_helpers import load_tool

test_tool = load_tool('test')

# the test pipeline of the ADE20K configs: annotations loaded after Resize,
# so the check compares them with the image's original shape
RESIZE_THEN_LOAD = [dict(type='LoadImageFromFile'),
                    dict(type='Resize', scale=(64, 48), keep_ratio=False),
                    dict(type='LoadAnnotations'), dict(type='PackSegInputs')]


@pytest.fixture
def data(tmp_path):
    """4 + 4 images (32x32) and annotations (classes 0/1)."""
    root = str(tmp_path / 'data')
    write_dataset(root)
    return root


def annotation(root, split, i=0):
    return osp.join(root, 'ann_dir', split, f'{i}.png')


def damage(path, kind):
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if kind == 'smaller':
        label = cv2.resize(label, (26, 21), interpolation=cv2.INTER_NEAREST)
    elif kind == 'rgb':  # the same labels, written as a colour image
        label = cv2.merge([label, label, label])
    cv2.imwrite(path, label)


MESSAGES = {
    'smaller': r'annotation {ann} has shape \(21, 26\) but its image {img} '
               r'has shape \(32, 32\) \(height, width\)\. Each annotation '
               r'must have the size of its image',
    'rgb': r'annotation {ann} has shape \(32, 32, 3\): 3 channels \(its '
           r'image {img} has shape \(32, 32\)\)\. An annotation must be one '
           r'channel of class indices .*convert a colour \(RGB\) annotation '
           r'to class indices',
}


def expected(kind, root, split, i=0):
    return MESSAGES[kind].format(
        ann=re.escape(annotation(root, split, i)),
        img=re.escape(osp.join(root, 'img_dir', split, f'{i}.png')))


@pytest.mark.parametrize('kind', ['smaller', 'rgb'])
def test_training_stops_on_an_annotation_that_does_not_fit(data, tmp_path,
                                                           kind):
    for i in range(4):  # every sample: the first one read fails
        damage(annotation(data, 'train', i), kind)
    cfg = runner_cfg(data, str(tmp_path / 'work'), 'shape', max_iters=2)
    setup_train_run(cfg, 'none', False)
    with pytest.raises(AnnotationShapeError) as info:
        Runner.from_cfg(cfg).train()
    message = str(info.value)
    assert any(re.search(expected(kind, data, 'train', i), message)
               for i in range(4)), message


def write_test_config(data, tmp_path):
    cfg = runner_cfg(data, str(tmp_path / 'work'), 'shape')
    cfg.test_dataloader.dataset.pipeline = RESIZE_THEN_LOAD
    path = str(tmp_path / 'tiny.py')
    cfg.dump(path)
    return path


@pytest.mark.parametrize('kind', ['smaller', 'rgb'])
def test_evaluation_stops_on_an_annotation_that_does_not_fit(data, tmp_path,
                                                             kind):
    """tools/test.py with annotations loaded after Resize: samples 0 and 1
    fit and pass (compared with the original image shape, not the resized
    one), sample 2 is named; mmseg's IoUMetric gave `IndexError: The shape
    of the mask [21, 26] ...` / `too many indices`, naming no file."""
    damage(annotation(data, 'val', 2), kind)
    with pytest.raises(AnnotationShapeError,
                       match=expected(kind, data, 'val', 2)):
        test_tool.main([write_test_config(data, tmp_path), '--work-dir',
                        str(tmp_path / 'test')])


def test_shape_is_checked_without_num_classes(data):
    """A config whose head has no num_classes gets the shape check alone."""
    cfg = runner_cfg(data, 'w', 'x')
    del cfg.model.decode_head['num_classes']
    add_data_checks(cfg)
    steps = cfg.train_dataloader.dataset.pipeline[0]['transforms']
    assert steps[2] == dict(type='CheckSegLabels')
    check = TRANSFORMS.build(steps[2])
    results = dict(gt_seg_map=np.full((4, 5), 200, np.uint8),
                   ori_shape=(4, 5), seg_map_path='a.png', img_path='a.jpg')
    assert check(dict(results)) is not None  # any value: no num_classes
    with pytest.raises(AnnotationShapeError, match=r'annotation a.png has '
                       r'shape \(4, 5\) but its image a.jpg has shape '
                       r'\(6, 5\) \(height, width\)\. Each annotation'):
        check(dict(results, ori_shape=(6, 5)))
    # height and width swapped: OpenCV turned a JPEG by its EXIF tag
    with pytest.raises(AnnotationShapeError, match=r'has shape \(5, 4\) '
                       r"\(height, width\)\. The image's height and width "
                       r"are the annotation's width and height: a photo with "
                       r'an EXIF orientation tag'):
        check(dict(results, ori_shape=(5, 4)))
    with pytest.raises(AnnotationShapeError, match=r'shape \(4, 5, 4\): 4 '
                       r'channels'):
        check(dict(results, gt_seg_map=np.zeros((4, 5, 4), np.uint8)))
