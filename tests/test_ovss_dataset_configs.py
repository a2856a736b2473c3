"""The 8 benchmark bases (configs/ovss/_base_/datasets): each builds its
test dataloader on a tiny dataset in the real layout, resizes to the
protocol's short side, and gives the labels its benchmark evaluates."""
import importlib.util
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from denseclip.toy.data import make_toy_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASES = osp.join(ROOT, 'configs', 'ovss', '_base_', 'datasets')
SIZE = (30, 40)  # h, w of every image: short side 30


def _converter():
    name = '_tool_coco_object'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name,
            osp.join(ROOT, 'tools', 'dataset_converters', 'coco_object.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _write(path, array):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, array), path


def _image(rng):
    return rng.integers(0, 256, SIZE + (3, ), dtype=np.uint8)


def _labels(rng, values):
    return rng.choice(np.asarray(values), size=SIZE).astype(np.uint8)


def _reduce_zero(label):
    out = label.astype(np.int64) - 1
    out[(label == 0) | (label == 255)] = 255
    return out


def make_layout(benchmark, root, rng):
    """Write two samples in the benchmark's layout; returns {image name:
    the label map the benchmark should load}."""
    expected = {}
    if benchmark in ('voc21', 'voc20', 'ade20k'):
        layout = 'ade' if benchmark == 'ade20k' else 'voc'
        make_toy_dataset(root, layout, num_train=1, num_val=2,
                         train_size=SIZE, val_size=SIZE)
        folder = 'annotations/validation' if layout == 'ade' else \
            'SegmentationClass'
        for name in sorted(os.listdir(osp.join(root, folder))):
            if layout == 'voc' and 'val' not in name:
                continue
            label = cv2.imread(osp.join(root, folder, name),
                               cv2.IMREAD_UNCHANGED)
            expected[name[:-4]] = label if benchmark == 'voc21' else \
                _reduce_zero(label)
        return expected
    for i in range(2):
        if benchmark in ('context60', 'context59'):
            name = f'2008_{i:06d}'
            _write(osp.join(root, 'JPEGImages', name + '.jpg'), _image(rng))
            label = _labels(rng, range(60))
            _write(osp.join(root, 'SegmentationClassContext', name + '.png'),
                   label)
            expected[name] = label if benchmark == 'context60' else \
                _reduce_zero(label)
        elif benchmark in ('coco_stuff164k', 'coco_object'):
            name = f'{i:012d}'
            _write(osp.join(root, 'images', 'val2017', name + '.jpg'),
                   _image(rng))
            label = _labels(rng, list(range(171)) + [255])
            _write(
                osp.join(root, 'annotations', 'val2017',
                         name + '_labelTrainIds.png'), label)
            if benchmark == 'coco_stuff164k':
                expected[name] = label
            else:  # things 1..80, stuff and unlabeled background
                expected[name] = np.where(label < 80, label + 1, 0)
        elif benchmark == 'cityscapes':
            name = f'frankfurt_000000_{i:06d}'
            _write(
                osp.join(root, 'leftImg8bit', 'val', 'frankfurt',
                         name + '_leftImg8bit.png'), _image(rng))
            label = _labels(rng, list(range(19)) + [255])
            _write(
                osp.join(root, 'gtFine', 'val', 'frankfurt',
                         name + '_gtFine_labelTrainIds.png'), label)
            expected['frankfurt/' + name] = label
    if benchmark.startswith('context'):
        sets = osp.join(root, 'ImageSets', 'SegmentationContext')
        os.makedirs(sets)
        with open(osp.join(sets, 'val.txt'), 'w') as f:
            f.write(''.join(n + '\n' for n in expected))
    if benchmark == 'coco_object':
        assert _converter().main([root]) == 0
    return expected


def build_loader(cfg, root):
    loader_cfg = cfg.test_dataloader
    loader_cfg.dataset.data_root = root
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    return Runner.build_dataloader(loader_cfg)


BENCHMARKS = ['voc21', 'context60', 'coco_object', 'voc20', 'context59',
              'coco_stuff164k', 'cityscapes', 'ade20k']
SHORT_SIDE = dict.fromkeys(BENCHMARKS, 336)
SHORT_SIDE['cityscapes'] = 560


@pytest.mark.parametrize('bench', BENCHMARKS)
def test_base_builds_and_loads_the_benchmarks_labels(bench, tmp_path,
                                                     capsys):
    root = str(tmp_path / bench)
    expected = make_layout(bench, root, np.random.default_rng(0))
    cfg = Config.fromfile(osp.join(BASES, f'{bench}.py'))
    assert cfg.short_side == SHORT_SIDE[bench]
    assert cfg.val_dataloader.dataset == cfg.test_dataloader.dataset
    assert cfg.test_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])
    loader = build_loader(cfg, root)
    dataset = loader.dataset
    assert len(dataset.metainfo['classes']) == cfg.num_classes
    assert len(dataset) == len(expected) == 2
    for batch in loader:
        image = batch['inputs'][0]
        sample = batch['data_samples'][0]
        assert min(image.shape[1:]) == cfg.short_side  # the protocol's resize
        assert sample.ori_shape == SIZE
        gt = sample.gt_sem_seg.data[0].numpy()  # at the original size
        name = osp.relpath(sample.img_path, dataset.data_prefix['img_path'])
        name = name.split('_leftImg8bit')[0].rsplit('.', 1)[0]
        np.testing.assert_array_equal(gt, expected[name], err_msg=name)


def test_a_method_config_sets_another_short_side(tmp_path):
    """The override docs/ovss.md shows: short_side and the pipeline."""
    root = str(tmp_path / 'voc')
    make_layout('voc21', root, None)
    child = tmp_path / 'method_voc21.py'
    child.write_text(
        f"_base_ = [{osp.join(BASES, 'voc21.py')!r}]\n"
        'short_side = 448\n'
        'test_pipeline = [\n'
        "    dict(type='LoadImageFromFile'),\n"
        "    dict(type='Resize', scale=(2048, short_side), keep_ratio=True),\n"
        "    dict(type='LoadAnnotations'),\n"
        "    dict(type='PackSegInputs'),\n"
        ']\n'
        'val_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n'
        'test_dataloader = val_dataloader\n')
    cfg = Config.fromfile(str(child))
    assert cfg.class_names_file == 'configs/ovss/class_names/voc21.txt'
    assert cfg.val_dataloader.dataset.pipeline[1].scale == (2048, 448)
    batch = next(iter(build_loader(cfg, root)))
    assert min(batch['inputs'][0].shape[1:]) == 448
