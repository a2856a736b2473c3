"""tools/check_datasets.py on small trees in the real layouts: what is ready,
what is missing and what each dataset lacks (counts, label maps, label
values), its exit status, and that its datasets are the ones the configs
read."""
import glob
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from denseclip_helpers import load_tool
from mmengine.config import Config
from test_ovss_dataset_configs import make_layout

from denseclip.toy.data import make_toy_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def tool():
    return load_tool('check_datasets')


def run(tool, capsys, *argv):
    """``(exit status, {dataset: its report text}, the whole output)``."""
    status = tool.main(list(argv))
    out = capsys.readouterr().out
    blocks, name = {}, None
    for line in out.splitlines():
        body = line[len('[datasets] '):]
        head = body.split(':')[0]
        if head in tool.CHECKS:
            name = head
            blocks[name] = body
        elif body.startswith('    ') and name:
            blocks[name] += '\n' + body.strip()
    return status, blocks, out


def voc_tree(root):
    """VOC2012 in its layout: 1 train and 2 val images (labels 0..4 and 255
    boundaries)."""
    voc = osp.join(root, 'VOCdevkit', 'VOC2012')
    make_toy_dataset(voc, 'voc', num_train=1, num_val=2, train_size=(30, 40),
                     val_size=(30, 40))
    return voc


def test_an_empty_data_root_has_every_dataset_missing(tool, tmp_path,
                                                      capsys):
    status, blocks, out = run(tool, capsys, '--data-root', str(tmp_path))
    assert status == 1
    assert set(blocks) == set(tool.CHECKS)
    for name, text in blocks.items():
        assert text.startswith(f'{name}: MISSING'), text
        assert f'how to make it: docs/datasets.md#{tool.CHECKS[name].guide}' \
            in text
    assert f'no folder {tmp_path}/VOCdevkit/VOC2012' in blocks['voc21']
    assert f'no folder {tmp_path}/ade/ADEChallengeData2016' in \
        blocks['ade20k_train']
    assert blocks['voc_aug'].count('LACKS') == 1  # one line for both parts
    assert out.splitlines()[-1].startswith('[datasets] ready: none; not '
                                           'ready: voc21, context60,')


def test_a_data_root_that_does_not_exist_is_said(tool, tmp_path, capsys):
    status, blocks, out = run(tool, capsys, '--data-root',
                              str(tmp_path / 'nowhere'), '--only', 'ade20k')
    assert status == 1 and list(blocks) == ['ade20k']
    assert '(no such folder)' in out.splitlines()[0]


def test_a_subset_is_ready_with_any_count_and_incomplete_without(
        tool, tmp_path, capsys):
    voc = voc_tree(str(tmp_path))
    status, blocks, out = run(tool, capsys, '--data-root', str(tmp_path),
                              '--only', 'voc21', 'voc20', '--any-count')
    assert status == 0, out
    listed = osp.join(voc, 'ImageSets/Segmentation/val.txt')
    for name in ('voc21', 'voc20'):
        assert blocks[name].startswith(f'{name}: READY')
        assert f'2 images listed in {listed} (the real dataset: 1449)' in \
            blocks[name]
        assert 'LACKS' not in blocks[name]
    # the values the toy labels hold, and what each dataset reads
    values = set()
    for name in ('2007_val000000', '2007_val000001'):
        values |= set(np.unique(cv2.imread(
            osp.join(voc, 'SegmentationClass', name + '.png'),
            cv2.IMREAD_UNCHANGED)).tolist())
    shown = tool._values(sorted(values))
    assert f'label values in 2 sampled maps: {shown} (the dataset reads ' \
        '0-20, 255: 21 classes, 255 ignored)' in blocks['voc21']
    assert '(the dataset reads 0-20, 255: 21 stored classes mapped to 20, ' \
        '255 ignored)' in blocks['voc20']
    assert out.splitlines()[-1] == \
        '[datasets] ready: voc21, voc20; not ready: none'

    status, blocks, _ = run(tool, capsys, '--data-root', str(tmp_path),
                            '--only', 'voc21')
    assert status == 1
    assert blocks['voc21'].startswith('voc21: INCOMPLETE')
    assert 'LACKS: 2 images, not 1449: an incomplete download' in \
        blocks['voc21']


def test_label_values_outside_the_classes_and_colour_maps_are_named(
        tool, tmp_path, capsys):
    context = osp.join(str(tmp_path), 'VOCdevkit', 'VOC2010')
    make_layout('context59', context, np.random.default_rng(0))
    labels = sorted(glob.glob(osp.join(context, 'SegmentationClassContext',
                                       '*.png')))
    bad = np.full((30, 40), 7, np.uint8)
    bad[0, :3] = (60, 61, 200)
    cv2.imwrite(labels[0], bad)
    cv2.imwrite(labels[1], np.zeros((30, 40, 3), np.uint8))  # a colour map
    status, blocks, _ = run(tool, capsys, '--data-root', str(tmp_path),
                            '--only', 'context59', 'context60', '--any-count')
    assert status == 1
    for name, reads in (('context59', '0 ignored, 1-59 -> 0-58 '
                         '(reduce_zero_label)'),
                        ('context60', '60 classes')):
        text = blocks[name]
        assert text.startswith(f'{name}: INCOMPLETE')
        assert f'LACKS: label map {labels[0]} holds 60-61, 200, values the ' \
            f'dataset does not read (it reads 0-59, 255: {reads}, 255 ' \
            'ignored)' in text
        assert f'LACKS: label map {labels[1]}: a RGB colour image, not a ' \
            'map of class indices' in text


def test_missing_label_maps_and_images_are_counted(tool, tmp_path, capsys):
    coco = osp.join(str(tmp_path), 'coco_stuff164k')
    make_layout('coco_stuff164k', coco, np.random.default_rng(0))
    voc = voc_tree(str(tmp_path))
    os.remove(osp.join(voc, 'JPEGImages', '2007_val000001.jpg'))
    status, blocks, out = run(tool, capsys, '--data-root', str(tmp_path),
                              '--only', 'coco_stuff164k', 'coco_object',
                              'voc21', '--any-count')
    assert status == 1
    assert blocks['coco_stuff164k'].startswith('coco_stuff164k: READY')
    assert 'reads 0-170, 255: 171 classes' in blocks['coco_stuff164k']
    text = blocks['coco_object']
    assert text.startswith('coco_object: INCOMPLETE')
    label = osp.join(coco, 'annotations', 'val2017',
                     '000000000000_instanceTrainIds.png')
    assert f'LACKS: 2 of 2 images have no label map, e.g. {label} (make ' \
        'them: tools/dataset_converters/coco_object.py)' in text
    assert 'how to make it: docs/datasets.md#coco-object' in text
    assert 'LACKS: 1 of 2 listed images do not exist, e.g. ' \
        f'{osp.join(voc, "JPEGImages", "2007_val000001.jpg")}' in \
        blocks['voc21']
    assert out.splitlines()[-1] == ('[datasets] ready: coco_stuff164k; not '
                                    'ready: coco_object, voc21 (see '
                                    'docs/datasets.md)')


def test_ade20k_training_set_and_its_unlabelled_images(tool, tmp_path,
                                                       capsys):
    ade = osp.join(str(tmp_path), 'ade', 'ADEChallengeData2016')
    make_toy_dataset(ade, 'ade', num_train=3, num_val=1, train_size=(30, 40),
                     val_size=(30, 40))
    status, blocks, _ = run(tool, capsys, '--data-root', str(tmp_path),
                            '--only', 'ade20k_train', 'ade20k', '--any-count')
    assert status == 0
    assert '3 images under ' \
        f'{osp.join(ade, "images", "training")} (the real dataset: 20210)' \
        in blocks['ade20k_train']
    assert '1 images under' in blocks['ade20k']
    assert 'reads 0-150, 255: 0 ignored, 1-150 -> 0-149 (reduce_zero_label)' \
        in blocks['ade20k_train']
    label = osp.join(ade, 'annotations', 'training', 'ADE_train_00000002.png')
    os.remove(label)
    status, blocks, _ = run(tool, capsys, '--data-root', str(tmp_path),
                            '--only', 'ade20k_train', '--any-count')
    assert status == 1
    assert f'LACKS: 1 of 3 images have no label map, e.g. {label}' in \
        blocks['ade20k_train']


def test_voc_aug_checks_voc_train_and_the_sbd_part(tool, tmp_path, capsys):
    voc = voc_tree(str(tmp_path))
    status, blocks, _ = run(tool, capsys, '--data-root', str(tmp_path),
                            '--only', 'voc_aug', '--any-count')
    aug_list = osp.join(voc, 'ImageSets', 'Segmentation', 'aug.txt')
    assert status == 1 and f'LACKS: no folder {voc}/SegmentationClassAug' \
        in blocks['voc_aug']
    # what mmseg's voc_aug.py writes: SBD's labels as PNGs and aug.txt
    os.makedirs(osp.join(voc, 'SegmentationClassAug'))
    names = ['2008_000002', '2008_000003']
    for name in names:
        shutil.copy(osp.join(voc, 'JPEGImages', '2007_train000000.jpg'),
                    osp.join(voc, 'JPEGImages', name + '.jpg'))
        cv2.imwrite(osp.join(voc, 'SegmentationClassAug', name + '.png'),
                    np.full((30, 40), 3, np.uint8))
    with open(aug_list, 'w') as f:
        f.write('\n'.join(names) + '\n')
    status, blocks, _ = run(tool, capsys, '--data-root', str(tmp_path),
                            '--only', 'voc_aug', '--any-count')
    assert status == 0, blocks
    text = blocks['voc_aug']
    assert '1 images listed in ' \
        f'{osp.join(voc, "ImageSets/Segmentation/train.txt")} (the real ' \
        'dataset: 1464)' in text
    assert f'2 images listed in {aug_list} (the real dataset: 9118)' in text
    assert 'label values in 2 sampled maps: 3 (the dataset reads 0-20, 255' \
        in text


def test_an_unknown_dataset_name_is_an_error_naming_the_choices(
        tool, capsys):
    with pytest.raises(SystemExit) as e:
        tool.main(['--only', 'voc21', 'pascal'])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert 'unknown dataset(s) pascal; choose from voc21, context60,' in err


@pytest.mark.slow
@pytest.mark.parametrize('bench', ['voc21', 'context60', 'coco_object',
                                   'voc20', 'context59', 'coco_stuff164k',
                                   'cityscapes', 'ade20k'])
def test_the_checks_read_what_the_method_configs_read(tool, bench):
    """Every training-free method config of a benchmark tests on the data
    that the check of that benchmark reads."""
    keys = ('type', 'data_root', 'data_prefix', 'ann_file',
            'reduce_zero_label', 'metainfo', 'img_suffix', 'seg_map_suffix')
    checked = tool.dataset_cfgs(tool.CHECKS[bench])[0]
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', 'ovss', '*',
                                      f'*_vit-b16_{bench}.py')))
    assert len(paths) >= 4, paths  # the 4 methods' published settings
    for path in paths:
        ds = Config.fromfile(path).test_dataloader.dataset
        for key in keys:
            assert ds.get(key) == checked.get(key), (path, key)
