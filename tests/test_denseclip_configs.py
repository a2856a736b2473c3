"""DenseCLIP / CLIP+FPN configs: the papers' settings, models and pipelines build and run."""
import os.path as osp

import pytest
import torch
from denseclip_helpers import (CONFIG_DIR, DENSECLIP_CONFIGS, TOY_CONFIG,
                               make_samples)
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from mmseg.utils import register_all_modules

from denseclip.toy.data import TOY_CLASSES, TOY_PALETTE
from denseclip.toy.files import DATA

register_all_modules(init_default_scope=True)

CLIP_MEAN = [122.7709, 116.7460, 104.0937]
CLIP_STD = [68.5005, 66.6322, 70.3232]

# what each paper config must say (DenseCLIP paper / reference configs)
PAPER = {
    'denseclip_fpn_r50_ade.py': dict(
        type='DenseCLIP', crop=512, backbone='CLIPResNetWithAttention',
        layers=[3, 4, 6, 3], output_dim=1024, text_dim=1024,
        neck_in=[256, 512, 1024, 2048 + 150], score_index=3,
        pretrained='pretrained/RN50.pt'),
    'denseclip_fpn_r101_ade.py': dict(
        type='DenseCLIP', crop=512, backbone='CLIPResNetWithAttention',
        layers=[3, 4, 23, 3], output_dim=512, text_dim=512,
        neck_in=[256, 512, 1024, 2048 + 150], score_index=3,
        pretrained='pretrained/RN101.pt'),
    'denseclip_fpn_vit-b_ade_640.py': dict(
        type='DenseCLIP', crop=640, backbone='CLIPVisionTransformer',
        output_dim=512, text_dim=512, neck_in=[768, 768, 768 + 150, 768],
        score_index=2, pretrained='pretrained/ViT-B-16.pt', twice=False),
    'denseclip_fpn_vit-b_ade_640_released.py': dict(
        type='DenseCLIP', crop=640, backbone='CLIPVisionTransformer',
        output_dim=512, text_dim=512, neck_in=[768, 768, 768 + 150, 768],
        score_index=2, pretrained='pretrained/ViT-B-16.pt', twice=True),
    'fpn_clip_r50_ade.py': dict(
        type='EncoderDecoder', crop=512, backbone='CLIPResNet',
        layers=[3, 4, 6, 3], neck_in=[256, 512, 1024, 2048],
        pretrained='pretrained/RN50.pt'),
    'fpn_clip_r101_ade.py': dict(
        type='EncoderDecoder', crop=512, backbone='CLIPResNet',
        layers=[3, 4, 23, 3], neck_in=[256, 512, 1024, 2048],
        pretrained='pretrained/RN101.pt'),
    'fpn_clip_vit-b_ade_640.py': dict(
        type='EncoderDecoder', crop=640, backbone='CLIPVisionTransformer',
        neck_in=[768] * 4, pretrained='pretrained/ViT-B-16.pt'),
}


def config_id(path):
    return osp.relpath(path, CONFIG_DIR)


def load(path):
    return Config.fromfile(path)


def small_model_cfg(cfg):
    """The config's model, without CLIP file, with a 1-layer text tower so a
    forward of 150 class names is quick (shapes and wiring unchanged)."""
    model = cfg.model.copy()
    model.pretrained = None
    if model.type == 'DenseCLIP':
        model.text_encoder.transformer_layers = 1
        model.text_encoder.pretrained = None
    if model.backbone.type == 'BackboneWithEmbeddings':
        model.backbone.backbone.init_cfg = None  # ImageNet weights: download
    return model


@pytest.mark.parametrize('path', DENSECLIP_CONFIGS, ids=config_id)
def test_config_uses_the_shared_runtime(path):
    cfg = load(path)
    assert cfg.custom_imports['imports'] == ['denseclip']
    assert cfg.default_scope == 'mmseg'
    assert cfg.tta_model == dict(type='SegTTAModel')
    assert cfg.model.data_preprocessor.mean == CLIP_MEAN
    assert cfg.model.data_preprocessor.std == CLIP_STD
    assert cfg.model.data_preprocessor.bgr_to_rgb is True


@pytest.mark.parametrize('name', sorted(PAPER))
def test_paper_settings(name):
    cfg, want = load(osp.join(CONFIG_DIR, name)), PAPER[name]
    model, crop = cfg.model, want['crop']
    assert model.type == want['type'] and model.pretrained == want['pretrained']
    assert model.backbone.type == want['backbone']
    for key in ('layers', 'output_dim'):
        if key in want:
            assert model.backbone[key] == want[key]
    assert model.backbone.get('input_resolution', crop) == crop
    assert model.neck.in_channels == want['neck_in']
    assert model.neck.out_channels == 256
    head = model.decode_head
    assert (head.type, head.num_classes, head.channels) == ('FPNHead', 150, 256)
    assert head.norm_cfg == dict(type='SyncBN', requires_grad=True)
    assert model.data_preprocessor.size == (crop, crop)
    assert model.test_cfg.mode == 'slide'
    assert model.test_cfg.crop_size == (crop, crop)
    assert model.test_cfg.stride == {512: (341, 341), 640: (426, 426)}[crop]
    if model.type == 'DenseCLIP':
        assert model.class_names == 'ade' and model.context_length == 5
        assert model.text_encoder.context_length == 13  # 8 contexts
        assert model.text_encoder.embed_dim == want['text_dim']
        assert model.text_dim == want['text_dim'] and model.tau == 0.07
        assert model.score_concat_index == want['score_index']
        assert model.context_decoder == dict(
            type='ContextDecoder', transformer_width=256, transformer_heads=4,
            transformer_layers=3, visual_dim=want['text_dim'], dropout=0.1)
        assert model.identity_head.loss_decode.loss_weight == 0.4
    if model.backbone.type == 'CLIPVisionTransformer':
        bb = model.backbone
        assert (bb.patch_size, bb.width, bb.layers, bb.heads) == (16, 768, 12,
                                                                  12)
        assert bb.out_indices == [3, 5, 7, 11]
        assert bb.get_embeddings == (model.type == 'DenseCLIP')
        if model.type == 'DenseCLIP':
            assert bb.drop_path_rate == 0.1
            assert bb.add_class_embedding_twice is want['twice']
    # data: ADE20K, 150 classes, mmseg's ADE pipeline at the crop size
    data = cfg.train_dataloader.dataset
    assert data.type == 'ADE20KDataset' and data.reduce_zero_label is True
    assert data.data_root == 'data/ade/ADEChallengeData2016'
    resize, crop_t = cfg.train_pipeline[2], cfg.train_pipeline[3]
    assert resize == dict(type='RandomResize', scale=(2048, crop),
                          ratio_range=(0.5, 2.0), keep_ratio=True)
    assert crop_t == dict(type='RandomCrop', crop_size=(crop, crop),
                          cat_max_ratio=0.75)
    assert [t.type for t in cfg.train_pipeline[4:]] == [
        'RandomFlip', 'PhotoMetricDistortion', 'PackSegInputs']
    assert cfg.train_dataloader.batch_size == 4  # x 8 GPUs
    # schedule: AdamW 1e-4, backbone x0.1, text encoder frozen, 80k poly
    optim = cfg.optim_wrapper
    assert optim.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
    keys = optim.paramwise_cfg.custom_keys
    assert keys['backbone'] == dict(lr_mult=0.1)
    assert keys['text_encoder'] == dict(lr_mult=0.0)
    assert keys['norm'] == dict(decay_mult=0.0)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR',
                                                              1e-6, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.begin,
            poly.end) == ('PolyLR', 0.9, 1e-6, 1500, 80000)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=80000,
                                 val_interval=8000)
    assert cfg.default_hooks.checkpoint.interval == 8000
    # multi-scale test: 0.5..1.75 of the single-scale size, x flip
    scales = [t.scale for t in cfg.tta_pipeline[1].transforms[0]]
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert scales == [(int(2048 * r), int(crop * r)) for r in ratios]
    assert [t.prob for t in cfg.tta_pipeline[1].transforms[1]] == [0., 1.]


def test_toy_config_matches_toy_files():
    from denseclip.toy.clip_model import DEMO_RESNET
    cfg = load(TOY_CONFIG)
    assert tuple(cfg.metainfo.classes) == TOY_CLASSES
    assert [list(p) for p in cfg.metainfo.palette] == TOY_PALETTE
    model = cfg.model
    assert model.class_names is None  # from the dataset, by ClassNamesHook
    assert dict(type='ClassNamesHook') in cfg.custom_hooks
    assert model.decode_head.num_classes == len(TOY_CLASSES)
    assert model.backbone.layers == list(DEMO_RESNET['vision_layers'])
    assert model.backbone.width == DEMO_RESNET['vision_width']
    assert model.backbone.output_dim == DEMO_RESNET['embed_dim']
    assert model.text_dim == DEMO_RESNET['embed_dim']
    assert model.token_embed_dim == DEMO_RESNET['transformer_width']
    assert model.test_cfg.mode == 'slide'
    # same optimizer groups as the paper's configs
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['text_encoder'] == dict(
        lr_mult=0.0)


@pytest.mark.slow
@pytest.mark.parametrize('path', DENSECLIP_CONFIGS, ids=config_id)
def test_model_builds_and_runs(path):
    cfg = load(path)
    model = revert_sync_batchnorm(MODELS.build(small_model_cfg(cfg)))
    model.init_weights()
    num_classes = cfg.model.decode_head.num_classes
    if cfg.model.type == 'DenseCLIP' and cfg.model.class_names is None:
        model.set_class_names(TOY_CLASSES)
    size = 64
    inputs = torch.randn(2, 3, size, size)
    samples = make_samples(2, size, size, num_classes)
    model.train()
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items()
               if 'loss' in k)
    if cfg.model.type == 'DenseCLIP':
        assert 'aux_identity.loss_ce' in losses
        feats, score, _ = model._forward_features(inputs)
        assert score.shape[1] == num_classes
        assert feats[0].shape[1] == cfg.model.neck.out_channels
    model.eval()
    with torch.no_grad():
        logits = model.inference(inputs, [s.metainfo for s in samples])
    assert logits.shape == (2, num_classes, size, size)


@pytest.mark.parametrize('path', DENSECLIP_CONFIGS, ids=config_id)
def test_pipelines_build(path):
    cfg = load(path)
    init_default_scope('mmseg')
    for name in ('train_pipeline', 'test_pipeline', 'tta_pipeline'):
        transforms = [TRANSFORMS.build(t) for t in cfg[name]]
        assert len(transforms) == len(cfg[name])
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for t in cfg[loader].dataset.pipeline:
            TRANSFORMS.build(t)


@pytest.mark.parametrize('name', [
    'denseclip_fpn_r50_ade.py', 'denseclip_fpn_vit-b_ade_640.py',
    'toy/denseclip_toy.py'
])
def test_pipelines_on_ade_layout(name, shared_toy_files):
    """The datasets and pipelines read ADE20K's layout: labels reduced by one
    (0 -> 255), crops at the crop size, test images at the test scale with
    labels at the original size, 12 TTA views."""
    cfg = load(osp.join(CONFIG_DIR, name))
    init_default_scope('mmseg')
    crop = cfg.crop_size[0]
    short = cfg.img_scale[1]

    def dataset(loader, pipeline=None):
        data = cfg[loader].dataset.copy()
        data.data_root = shared_toy_files.data_root
        if pipeline is not None:
            data.pipeline = pipeline
        return DATASETS.build(data)

    train = dataset('train_dataloader')
    assert len(train) == DATA['num_train']
    item = train[0]
    img = item['inputs']
    labels = item['data_samples'].gt_sem_seg.data
    assert img.shape[0] == 3 and max(img.shape[1:]) <= crop
    assert labels.shape[1:] == img.shape[1:]
    values = set(labels.unique().tolist())
    assert values <= set(range(len(TOY_CLASSES))) | {255}
    assert values & set(range(len(TOY_CLASSES)))  # on-disk k + 1 -> k

    test = dataset('test_dataloader')
    item = test[0]
    assert min(item['inputs'].shape[1:]) == short  # 120x150 -> short side
    assert item['data_samples'].gt_sem_seg.data.shape[1:] == (120, 150)
    assert item['data_samples'].gt_sem_seg.data.max() < len(TOY_CLASSES)

    tta = dataset('test_dataloader', cfg.tta_pipeline)
    views = tta[0]
    assert len(views['inputs']) == 12
    shorts = sorted({min(v.shape[1:]) for v in views['inputs']})
    assert shorts == [int(short * r) for r in (0.5, 0.75, 1.0, 1.25, 1.5,
                                                1.75)]


def test_variant_configs():
    pre = load(osp.join(CONFIG_DIR, 'denseclip_fpn_r50-pre_ade.py')).model
    assert pre.prompting == 'pre'
    assert (pre.context_decoder.visual_dim, pre.context_decoder.memory_dim) \
        == (pre.token_embed_dim, pre.backbone.output_dim)
    cfg = load(osp.join(CONFIG_DIR, 'denseclip_fpn_imagenet-r50_ade.py'))
    model = cfg.model
    assert model.pretrained is None
    assert model.backbone.type == 'BackboneWithEmbeddings'
    assert model.backbone.backbone.type == 'ResNetV1c'
    assert model.backbone.embed_dim == model.text_dim == 1024
    assert model.text_encoder.pretrained == 'pretrained/RN50.pt'
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert keys['text_encoder'] == dict(lr_mult=0.0)
    assert keys['backbone.proj'] == dict(lr_mult=1.0)
