"""A split that lists no samples stops tools/train.py and tools/test.py
before the runner, naming the dataloader, the dataset and what was looked
for (check_splits_have_samples); mmengine gave `ValueError: need at least
one array to concatenate`."""
import glob
import os
import os.path as osp
import re

import pytest
from tiny_runner import runner_cfg, write_dataset

from denseclip.engine import EmptySplitError
from denseclip.toy.data import make_toy_dataset
from denseclip_helpers import load_tool

test_tool, train_tool = load_tool('test'), load_tool('train')


@pytest.fixture
def data(tmp_path):
    root = str(tmp_path / 'data')
    write_dataset(root)
    return root


def empty(folder):
    for path in glob.glob(osp.join(folder, '*')):
        os.remove(path)


def dump(cfg, tmp_path):
    path = str(tmp_path / 'tiny.py')
    cfg.dump(path)
    return path


def test_an_empty_test_split_is_named(data, tmp_path):
    empty(osp.join(data, 'img_dir', 'val'))
    cfg = runner_cfg(data, str(tmp_path / 'work'), 'empty')
    with pytest.raises(EmptySplitError, match=re.escape(
            f"test_dataloader.dataset (BaseSegDataset) holds no samples: no "
            f"file ending in '.png' under {data}/img_dir/val (data_root "
            f"'{data}' + data_prefix.img_path 'img_dir/val'); check "
            'data_root, data_prefix.img_path and img_suffix')):
        test_tool.main([dump(cfg, tmp_path)])


def test_an_empty_validation_split_stops_training_before_it_starts(
        data, tmp_path):
    """Images of another suffix are not samples either."""
    for path in glob.glob(osp.join(data, 'img_dir', 'val', '*.png')):
        os.rename(path, path[:-4] + '.jpg')
    work_dir = tmp_path / 'work'
    cfg = runner_cfg(data, str(work_dir), 'empty')
    with pytest.raises(EmptySplitError, match=re.escape(
            "val_dataloader.dataset (BaseSegDataset) holds no samples: no "
            f"file ending in '.png' under {data}/img_dir/val")):
        train_tool.main([dump(cfg, tmp_path)])
    assert not glob.glob(str(work_dir / '*.pth'))


def test_an_empty_ann_file_is_named(tmp_path):
    """Pascal VOC's layout: the split is the list in ImageSets."""
    root = str(tmp_path / 'voc')
    make_toy_dataset(root, layout='voc', num_train=2, num_val=2)
    open(osp.join(root, 'ImageSets', 'Segmentation', 'val.txt'), 'w').close()
    cfg = runner_cfg(root, str(tmp_path / 'work'), 'voc')
    cfg.test_dataloader.dataset.update(
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt', img_suffix='.jpg')
    with pytest.raises(EmptySplitError, match=re.escape(
            'test_dataloader.dataset (BaseSegDataset) holds no samples: its '
            f'ann_file {root}/ImageSets/Segmentation/val.txt lists no images;'
            ' check ann_file')):
        test_tool.main([dump(cfg, tmp_path)])


def test_a_wrapped_empty_dataset_is_named(data, tmp_path):
    """ConcatDataset of a full and an empty split, inside a RepeatDataset."""
    empty(osp.join(data, 'img_dir', 'val'))
    cfg = runner_cfg(data, str(tmp_path / 'work'), 'wrapped')
    full = cfg.train_dataloader.dataset
    other = dict(full, data_prefix=dict(img_path='img_dir/val',
                                        seg_map_path='ann_dir/val'))
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset', times=2,
        dataset=dict(type='ConcatDataset', datasets=[full, other]))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    with pytest.raises(EmptySplitError, match=re.escape(
            'train_dataloader.dataset.dataset.datasets[1] (BaseSegDataset) '
            'holds no samples')):
        train_tool.main([dump(cfg, tmp_path)])


def test_a_missing_image_folder_is_named(data, tmp_path):
    cfg = runner_cfg(data, str(tmp_path / 'work'), 'missing')
    cfg.test_dataloader.dataset.data_prefix.img_path = 'images/val'
    with pytest.raises(FileNotFoundError, match=re.escape(
            'test_dataloader.dataset (BaseSegDataset): its image folder '
            f'{data}/images/val does not exist; check data_root and '
            'data_prefix.img_path')):
        test_tool.main([dump(cfg, tmp_path)])


def test_a_missing_ann_file_is_named(tmp_path):
    """mmseg's PascalVOCDataset said only `AssertionError`."""
    root = str(tmp_path / 'voc')
    make_toy_dataset(root, layout='voc', num_train=2, num_val=2)
    cfg = runner_cfg(root, str(tmp_path / 'work'), 'voc')
    dataset = cfg.test_dataloader.dataset
    dataset.update(type='PascalVOCDataset', data_prefix=dict(
        img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/test.txt')
    del dataset['metainfo'], dataset['img_suffix'], dataset['seg_map_suffix']
    with pytest.raises(FileNotFoundError, match=re.escape(
            'test_dataloader.dataset (PascalVOCDataset): its ann_file '
            f'{root}/ImageSets/Segmentation/test.txt does not exist; check '
            'data_root and ann_file')):
        test_tool.main([dump(cfg, tmp_path)])
