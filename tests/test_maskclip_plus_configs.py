"""Every MaskCLIP+ config builds, with the paper's splits of unseen classes."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# web_image/: templates that tools/maskclip_plus_folder.py fills in (no
# annotations, no teacher of their own), tested in test_maskclip_plus_folder.py
CONFIGS = sorted(p for p in glob.glob(
    osp.join(ROOT, 'configs/maskclip_plus/*/*.py')) if '/web_image/' not in p)

UNSEEN = {
    'voc12aug': {'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'},
    'pascal_context': {'cow', 'motorbike', 'sofa', 'cat', 'boat', 'fence',
                       'bird', 'tvmonitor', 'keyboard', 'aeroplane'},
    'coco-stuff164k': {'frisbee', 'skateboard', 'cardboard', 'carrot',
                       'scissors', 'suitcase', 'giraffe', 'cow', 'road',
                       'wall-concrete', 'tree', 'grass', 'river', 'clouds',
                       'playingfield'},
}


# the paper's six settings, one config per released model (the reference's
# README), and the distillation ablation
EXPECTED = {
    'annotation_free/' + name for name in (
        'maskclip_plus_r50_deeplabv2_r101_512x512_2k_voc12aug_20.py',
        'maskclip_plus_r50x16_deeplabv2_r101_512x512_2k_voc12aug_20.py',
        'maskclip_plus_vit16_deeplabv2_r101_512x512_2k_voc12aug_20.py',
        'maskclip_plus_r50_deeplabv2_r101_480x480_4k_pascal_context_59.py',
        'maskclip_plus_r50x16_deeplabv2_r101_480x480_4k_pascal_context_59.py',
        'maskclip_plus_vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py',
        'maskclip_plus_distill_vit16_deeplabv2_r101_480x480_4k_'
        'pascal_context_59.py',
        'maskclip_plus_r50_deeplabv2_r101_512x512_8k_coco-stuff164k.py',
        'maskclip_plus_r50x16_deeplabv2_r101_512x512_8k_coco-stuff164k.py',
        'maskclip_plus_vit16_deeplabv2_r101_512x512_8k_coco-stuff164k.py')
} | {
    'zero_shot/' + name for name in (
        'maskclip_plus_r50_deeplabv2_r101_512x512_20k_voc12aug.py',
        'maskclip_plus_r50_deeplabv2_r101_512x512_20k_voc12aug_20.py',
        'maskclip_plus_r50_deeplabv3plus_r101_480x480_40k_pascal_context.py',
        'maskclip_plus_r50_deeplabv2_r101_512x512_80k_coco-stuff164k.py')
}


def test_all_settings_and_released_models_have_a_config():
    names = {osp.relpath(p, osp.join(ROOT, 'configs/maskclip_plus'))
             for p in CONFIGS}
    assert EXPECTED <= names


def dataset_classes(dataset_cfg):
    metainfo = dataset_cfg.get('metainfo') or {}
    return list(metainfo.get('classes') or
                DATASETS.get(dataset_cfg.type).METAINFO['classes'])


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_with_its_split(path):
    cfg = Config.fromfile(path)
    # structure only: on the meta device no memory is allocated and no
    # random initialisation runs (a ResNet-101 student and a CLIP teacher);
    # building reads no weights either
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    teacher = model.teacher
    assert type(model).__name__ == 'MaskClipPlus'
    assert model.decode_head.channels == teacher.decode_head.text_channels
    assert model.num_classes - teacher.num_classes == model.teacher_offset
    # the student's depth is the one its name says (r50 or r101)
    depth = int(re.search(r'deeplabv\w+_r(\d+)_', osp.basename(path)).group(1))
    assert model.backbone.depth == depth
    assert cfg.custom_imports.imports == ['denseclip']

    train_set = cfg.train_dataloader.dataset
    train_set = train_set.datasets[0] if 'datasets' in train_set else train_set
    classes = dataset_classes(train_set)
    assert len(classes) == model.num_classes
    transforms = Compose(train_set.pipeline).transforms
    mark = [t for t in transforms if type(t).__name__ == 'MarkUnlabeled']
    assert len(mark) == 1
    names = [type(t).__name__ for t in transforms]
    # hidden before any transform that moves pixels
    assert names.index('MarkUnlabeled') == names.index('LoadAnnotations') + 1
    marked = sorted(mark[0].classes.tolist())
    # the model's unseen classes (a meta tensor: no values) are the
    # configured ones, or every class the teacher knows (annotation-free)
    declared = cfg.model.get('unseen_classes')
    assert model.unseen_classes.shape == (len(marked), )
    assert marked == (sorted(declared) if declared is not None else list(
        range(model.teacher_offset, model.num_classes)))
    Compose(cfg.test_dataloader.dataset.pipeline)

    if '/zero_shot/' in path:
        key = next(k for k in UNSEEN if k in osp.basename(path))
        assert {classes[i] for i in marked} == UNSEEN[key]
        assert model.self_train_from > 0
        assert cfg.test_evaluator.type == 'ZeroShotIoUMetric'
        assert sorted(cfg.test_evaluator.unseen_classes) == marked
    else:
        assert marked == list(range(model.num_classes))  # every class
        assert model.self_train_from == -1  # as the reference's configs
