"""The method configs of the 8 open-vocabulary benchmarks (configs/ovss/
<method>): each carries its paper's settings (values, read off the
references' configs: docs/ovss.md), the default-protocol variants carry the
project's default, and every model builds."""
import argparse
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS

from denseclip.models.layers.dense_last_block import DENSE_MODES

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OVSS = osp.join(ROOT, 'configs', 'ovss')
METHODS = ('maskclip', 'sclip', 'clearclip', 'naclip', 'scclip',
           'proxyclip')
BENCHMARKS = ('voc21', 'context60', 'coco_object', 'voc20', 'context59',
              'coco_stuff164k', 'cityscapes', 'ade20k')
NUM_CLASSES = dict(voc21=21, context60=60, coco_object=81, voc20=20,
                   context59=59, coco_stuff164k=171, cityscapes=19,
                   ade20k=150)
CLIP_FILE = 'pretrained/ViT-B-16.pt'
PAMR = dict(type='PAMR', num_iter=10, dilations=(8, 16))
SLIDE = ('slide', 224, 112)
WHOLE = ('whole', None, None)

# the last block: (mode, residual, ffn)
BLOCKS = dict(maskclip=('maskclip', True, True), sclip=('sclip', True, True),
              clearclip=('clearclip', False, False),
              naclip=('naclip', False, False),
              scclip=('scclip', None, None),
              proxyclip=('proxyclip', None, None))


def _settings(short, window, logit, thd, pamr, names):
    return dict(short=short, window=window, logit=logit, thd=thd, pamr=pamr,
                names=names)


def _default(benchmark):
    """This project's default protocol (docs/ovss.md)."""
    return _settings(560 if benchmark == 'cityscapes' else 336, SLIDE, 40.0,
                     0.1 if benchmark in ('voc21', 'context60',
                                          'coco_object') else 0.0,
                     None, f'{benchmark}.txt')


# each method's published settings, benchmark by benchmark: wangf3014/SCLIP,
# mc-lan/ClearCLIP, sinahmr/NACLIP configs/cfg_*.py over their segmentors'
# defaults; MaskCLIP has none published and takes the default protocol
PAPER = {
    'maskclip': {b: _default(b) for b in BENCHMARKS},
    'sclip': dict(
        voc21=_settings(336, SLIDE, 65.0, 0.1, None, 'voc21.txt'),
        context60=_settings(336, SLIDE, 50.0, 0.1, None, 'context60.txt'),
        coco_object=_settings(336, SLIDE, 50.0, 0.1, None,
                              'coco_object.txt'),
        voc20=_settings(336, SLIDE, 40.0, 0.0, None, 'voc20.txt'),
        context59=_settings(336, SLIDE, 40.0, 0.0, None, 'context59.txt'),
        coco_stuff164k=_settings(448, SLIDE, 40.0, 0.0, None,
                                 'coco_stuff164k.txt'),
        cityscapes=_settings(560, SLIDE, 40.0, 0.0, None, 'cityscapes.txt'),
        ade20k=_settings(336, SLIDE, 40.0, 0.0, None, 'ade20k.txt')),
    'clearclip': dict(
        voc21=_settings(448, ('slide', 448, 224), 50.0, 0.5, None,
                        'voc21_plain.txt'),
        context60=_settings(448, ('slide', 448, 224), 50.0, 0.15, None,
                            'context60.txt'),
        coco_object=_settings(448, ('slide', 448, 224), 50.0, 0.4, None,
                              'coco_object_plain.txt'),
        voc20=_settings(448, ('slide', 448, 224), 50.0, 0.0, None,
                        'voc20_plain.txt'),
        context59=_settings(448, ('slide', 448, 224), 50.0, 0.0, None,
                            'context59.txt'),
        coco_stuff164k=_settings(448, ('slide', 448, 224), 50.0, 0.0, None,
                                 'coco_stuff164k.txt'),
        cityscapes=_settings(448, ('slide', 224, 224), 50.0, 0.0, None,
                             'cityscapes.txt'),
        ade20k=_settings(448, ('slide', 448, 224), 50.0, 0.0, None,
                         'ade20k.txt')),
    'naclip': dict(
        voc21=_settings(336, WHOLE, 40.0, 0.1, PAMR, 'voc21.txt'),
        context60=_settings(336, SLIDE, 40.0, 0.1, PAMR, 'context60.txt'),
        coco_object=_settings(336, SLIDE, 40.0, 0.1, PAMR,
                              'coco_object.txt'),
        voc20=_settings(336, WHOLE, 40.0, 0.0, PAMR, 'voc20.txt'),
        context59=_settings(336, SLIDE, 40.0, 0.0, PAMR, 'context59.txt'),
        coco_stuff164k=_settings(336, SLIDE, 40.0, 0.0, PAMR,
                                 'coco_stuff164k.txt'),
        cityscapes=_settings(560, SLIDE, 40.0, 0.0, PAMR, 'cityscapes.txt'),
        ade20k=_settings(336, SLIDE, 40.0, 0.0, PAMR, 'ade20k.txt')),
    # SuleBai/SC-CLIP configs/cfg_*.py (ViT-B/16 values)
    'scclip': dict(
        voc21=_settings(336, SLIDE, 50.0, 0.15, None, 'voc21.txt'),
        context60=_settings(336, SLIDE, 40.0, 0.15, None, 'context60.txt'),
        coco_object=_settings(336, SLIDE, 55.0, 0.35, None,
                              'coco_object.txt'),
        **{b: _default(b) for b in BENCHMARKS[3:]}),
    # mc-lan/ProxyCLIP configs/cfg_*.py over its segmentor's defaults
    # (slide 336 / 112; its own background words: *_proxyclip.txt)
    'proxyclip': dict(
        voc21=_settings(336, ('slide', 336, 112), 40.0, 0.2, None,
                        'voc21_proxyclip.txt'),
        context60=_settings(336, ('slide', 336, 112), 40.0, 0.15, None,
                            'context60.txt'),
        coco_object=_settings(336, ('slide', 336, 112), 40.0, 0.25, None,
                              'coco_object_proxyclip.txt'),
        voc20=_settings(336, ('slide', 336, 112), 40.0, 0.0, None,
                        'voc20_plain.txt'),
        context59=_settings(336, ('slide', 336, 112), 40.0, 0.0, None,
                            'context59.txt'),
        coco_stuff164k=_settings(336, ('slide', 336, 112), 40.0, 0.0, None,
                                 'coco_stuff164k.txt'),
        cityscapes=_settings(448, SLIDE, 40.0, 0.0, None, 'cityscapes.txt'),
        ade20k=_settings(448, ('slide', 336, 112), 40.0, 0.0, None,
                         'ade20k.txt')),
}


def tiny_vfm_options(method, vfm_file):
    """ProxyCLIP's VFM: the tests' tiny random DINO file (patch 8); nothing
    for the other methods."""
    return [f'model.vfm.pretrained={vfm_file}'] if method == 'proxyclip' \
        else []


def tiny_scclip_layers(method):
    """SC-CLIP's layers for the 2-block toy ViT (SC-CLIP publishes them
    for 12 and 24 blocks only); nothing for the other methods."""
    if method != 'scclip':
        return []
    block = 'model.backbone.dense_last_block'
    return [f'{block}.self_adjust.pre_layer=0',
            f'{block}.self_adjust.post_layer=0',
            f'{block}.fusion.layers=(0,1)', f'{block}.cls_weight=0.3']


def tiny_options(clip):
    """``--cfg-options`` that shrink the configs' ViT-B/16 to the toy ViT
    CLIP of the tests (patch 16, width 64, 2 blocks, embedding 32, a text
    tower of 4 heads), with one template and images of short side 64: for
    tests of the code paths, not of the numbers."""
    shape = clip.shape
    return [
        f'model.backbone.input_resolution={shape["image_resolution"]}',
        f'model.backbone.width={shape["vision_width"]}',
        f'model.backbone.layers={shape["vision_layers"]}',
        'model.backbone.heads=1',
        f'model.backbone.output_dim={shape["embed_dim"]}',
        f'model.backbone.pretrained={clip.jit}',
        f'model.decode_head.in_channels={shape["vision_width"]}',
        f'model.decode_head.text_channels={shape["embed_dim"]}',
        f'model.decode_head.clip_pretrained={clip.jit}',
        f'model.decode_head.text_encoder.transformer_heads='
        f'{shape["transformer_heads"]}',
        'model.decode_head.text_cache=False',
        'model.decode_head.templates=single',
        'test_dataloader.dataset.pipeline.1.scale=(2048,64)',
        'test_dataloader.num_workers=0',
    ]


def config_file(method, benchmark, default=False, clip='vit-b16'):
    return osp.join(OVSS, method, f'{method}_{clip}_{benchmark}' +
                    ('_default' if default else '') + '.py')


def read_settings(cfg):
    """The settings a config ends with, in the form of :data:`PAPER`."""
    model = cfg.model
    test_cfg = model.test_cfg
    if test_cfg.mode == 'whole':
        assert set(test_cfg) == {'mode'}
        window = WHOLE
    else:
        crop, stride = test_cfg.crop_size, test_cfg.stride
        assert crop[0] == crop[1] and stride[0] == stride[1]
        window = (test_cfg.mode, crop[0], stride[0])
    resize = [t for t in cfg.test_dataloader.dataset.pipeline
              if t['type'] == 'Resize']
    assert len(resize) == 1 and resize[0].keep_ratio
    long_side, short = resize[0].scale
    assert long_side == 2048 and short == cfg.short_side
    names = model.decode_head.class_names
    assert osp.dirname(names) == 'configs/ovss/class_names'
    pamr = model.pamr if model.pamr is None else model.pamr.to_dict()
    return _settings(short, window, model.logit_scale, model.prob_thd, pamr,
                     osp.basename(names))


PAPER_CONFIGS = [(m, b) for m in METHODS for b in BENCHMARKS]
# the image towers the benchmark files come for: name in the file name ->
# (config values, conv1 and head projection shapes)
CLIPS = ('vit-b16', 'vit-l14')
TOWERS = {
    'vit-b16': dict(input_resolution=224, patch_size=16, width=768,
                    layers=12, heads=12, output_dim=512,
                    pretrained=CLIP_FILE),
    'vit-l14': dict(input_resolution=224, patch_size=14, width=1024,
                    layers=24, heads=16, output_dim=768,
                    pretrained='pretrained/ViT-L-14.pt'),
}


def test_the_configs_on_disk_are_the_expected_ones():
    found = sorted(osp.relpath(p, OVSS)
                   for m in METHODS for p in glob.glob(osp.join(OVSS, m,
                                                                '**', '*.py'),
                                                       recursive=True))
    defaults = {m: [b for b in BENCHMARKS if PAPER[m][b] != _default(b)]
                for m in METHODS}
    # a default-protocol file exactly where the paper's settings differ
    assert defaults == dict(
        maskclip=[], sclip=['voc21', 'context60', 'coco_object',
                            'coco_stuff164k'],
        clearclip=list(BENCHMARKS), naclip=list(BENCHMARKS),
        scclip=['voc21', 'context60', 'coco_object'],
        proxyclip=list(BENCHMARKS))
    expected = sorted(
        [f'{m}/_base_/{m}_vit-b16.py' for m in METHODS] +
        [f'{m}/{m}_{c}_{b}.py' for m, b in PAPER_CONFIGS for c in CLIPS] +
        [f'{m}/{m}_{c}_{b}_default.py' for m in METHODS
         for b in defaults[m] for c in CLIPS])
    assert found == expected
    # ViT-B/16 and ViT-L/14: a base each, 8 benchmarks, 31 defaults
    assert len(expected) == 6 + 2 * (48 + 31)


@pytest.mark.parametrize('method,bench', PAPER_CONFIGS,
                         ids=[f'{m}-{b}' for m, b in PAPER_CONFIGS])
def test_paper_config_carries_the_methods_published_settings(
        method, bench):
    cfg = Config.fromfile(config_file(method, bench))
    assert read_settings(cfg) == PAPER[method][bench]
    model = cfg.model
    assert model.type == 'TrainingFreeSegmentor'
    block = model.backbone.dense_last_block
    assert (block.mode, block.get('residual'),
            block.get('ffn')) == BLOCKS[method]
    assert block.get('gaussian_std') == (5.0 if method == 'naclip' else None)
    assert model.backbone.return_value_path is False
    # MaskCLIP resizes positions as its own vit.py does
    assert model.backbone.pos_interpolation == (
        'maskclip' if method == 'maskclip' else 'bicubic')
    assert model.backbone.type == 'CLIPVisionTransformer'
    assert (model.backbone.patch_size, model.backbone.width,
            model.backbone.layers) == (16, 768, 12)
    assert model.backbone.pretrained == CLIP_FILE
    head = model.decode_head
    assert head.type == 'MaskClipHead' and head.vit is True
    assert head.clip_pretrained == CLIP_FILE
    assert head.templates == 'imagenet80'
    assert head.ks_thresh == 0 and head.pd_thresh == 0
    # one class-file line per class, as many as the dataset has
    assert head.num_classes == NUM_CLASSES[bench] == cfg.num_classes
    with open(osp.join(ROOT, head.class_names)) as f:
        assert len(f.read().splitlines()) == head.num_classes
    dataset = cfg.test_dataloader.dataset
    classes = ((dataset.get('metainfo') or {}).get('classes') or
               DATASETS.get(dataset.type).METAINFO['classes'])
    assert len(classes) == head.num_classes
    assert cfg.val_dataloader.dataset.pipeline == dataset.pipeline
    assert cfg.test_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])
    assert cfg.custom_imports.imports == ['denseclip']


@pytest.mark.parametrize('method,bench', PAPER_CONFIGS,
                         ids=[f'{m}-{b}' for m, b in PAPER_CONFIGS])
def test_default_protocol_config_carries_the_projects_default(
        method, bench):
    """The ``_default`` file, or the paper's where they are the same."""
    path = config_file(method, bench, default=True)
    if not osp.exists(path):
        path = config_file(method, bench)
    cfg = Config.fromfile(path)
    assert read_settings(cfg) == _default(bench)
    paper = Config.fromfile(config_file(method, bench))
    # only the protocol differs: the same method and data
    assert cfg.model.backbone == paper.model.backbone
    assert cfg.test_dataloader.dataset.data_root == \
        paper.test_dataloader.dataset.data_root


def test_the_papers_differ_where_docs_ovss_says():
    """A few of the differences the docs' table names, from the configs."""
    def read(method, bench):
        return read_settings(Config.fromfile(config_file(method, bench)))

    assert read('sclip', 'voc21')['logit'] == 65.0
    # SCLIP's VOC21-only area threshold; no other config has one
    areas = {osp.relpath(p, OVSS): Config.fromfile(p).model.get('area_thd', 0)
             for p in sorted(glob.glob(osp.join(OVSS, '*', '*.py')))}
    assert {k: v for k, v in areas.items() if v} == {
        **{osp.join('sclip', f'sclip_{c}_voc21.py'): 0.1 for c in CLIPS},
        **{osp.join('scclip', f'scclip_{c}_voc21.py'): 0.1 for c in CLIPS}}
    assert read('scclip', 'coco_object')[
        'logit'] == 55.0 and read('scclip', 'coco_object')['thd'] == 0.35
    assert read('clearclip', 'voc21')['thd'] == 0.5
    assert read('naclip', 'voc21')['window'] == WHOLE
    assert read('sclip', 'coco_stuff164k')['short'] == 448
    assert read('naclip', 'coco_stuff164k')['short'] == 336
    assert read('clearclip', 'cityscapes')['window'] == ('slide', 224, 224)
    assert {read(m, 'voc21')['names'] for m in METHODS} == {
        'voc21.txt', 'voc21_plain.txt', 'voc21_proxyclip.txt'}
    assert read('proxyclip', 'voc21')['window'] == ('slide', 336, 112)
    assert read('proxyclip', 'cityscapes')['short'] == 448


ALL_CONFIGS = sorted(glob.glob(osp.join(OVSS, '*', '*.py')))


def tower_of(path):
    """The image tower a benchmark file is named for."""
    return TOWERS['vit-l14' if '_vit-l14_' in osp.basename(path) else
                  'vit-b16']


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_every_config_builds_on_the_meta_device(path):
    """Full ViT-B/16 structure, no memory and no CLIP file read."""
    cfg = Config.fromfile(path)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'TrainingFreeSegmentor'
    block = model.backbone.dense_last_block
    expected = cfg.model.backbone.dense_last_block
    residual, ffn = DENSE_MODES[expected.mode]
    assert (block.mode, block.residual, block.ffn) == (
        expected.mode, expected.get('residual', residual),
        expected.get('ffn', ffn))
    tower = tower_of(path)
    width, patch = tower['width'], tower['patch_size']
    assert model.backbone.conv1.weight.shape == (width, 3, patch, patch)
    assert len(model.backbone.transformer.resblocks) == tower['layers']
    assert model.decode_head.proj.weight.shape == (tower['output_dim'],
                                                   width, 1, 1)
    assert model.decode_head.num_classes == cfg.model.decode_head.num_classes
    assert model.logit_scale == cfg.model.logit_scale
    assert model.prob_thd == cfg.model.prob_thd
    assert model.area_thd == cfg.model.get('area_thd', 0.)
    assert (model.pamr is None) == (cfg.model.pamr is None)
    if model.pamr is not None:
        assert (model.pamr.num_iter, tuple(model.pamr.dilations)) == (10,
                                                                     (8, 16))


@pytest.mark.parametrize('method', METHODS)
def test_tiny_model_of_each_method_predicts_the_benchmarks_labels(
        method, vit_clip, tiny_vfm):
    """VOC21's published config (NACLIP: whole image and PAMR; the others
    slide windows) on the toy ViT CLIP: labels of the image's size, among
    the 21 classes."""
    from mmengine.config import DictAction
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(config_file(method, 'voc21'))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = (tiny_options(vit_clip) + tiny_scclip_layers(method) +
               tiny_vfm_options(method, tiny_vfm))
    cfg.merge_from_dict(parser.parse_args(
        ['--cfg-options'] + options).cfg_options)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    assert model.decode_head.text_embeddings.shape[1] == 32
    image = torch.randint(0, 256, (3, 64, 85), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(
        ori_shape=(30, 40), img_shape=(64, 85), pad_shape=(64, 85),
        padding_size=[0, 0, 0, 0]))
    data = model.data_preprocessor(dict(inputs=[image],
                                        data_samples=[sample]))
    with torch.no_grad():
        (result, ) = model.predict(data['inputs'], data['data_samples'])
    labels = result.pred_sem_seg.data
    assert labels.shape == (1, 30, 40)
    assert 0 <= int(labels.min()) and int(labels.max()) < 21


L14_CONFIGS = [(m, b, d) for m, b in PAPER_CONFIGS for d in (False, True)
               if osp.exists(config_file(m, b, d, 'vit-l14'))]


@pytest.mark.parametrize('method,bench,default', L14_CONFIGS,
                         ids=[f'{m}-{b}' + ('-default' if d else '')
                              for m, b, d in L14_CONFIGS])
def test_vit_l14_config_is_its_vit_b16_sibling_on_vit_l14(method, bench,
                                                          default):
    """The papers' code runs ViT-L/14 with the settings it runs ViT-B/16
    with (docs/ovss.md, "ViT-L/14"): everything but the image tower and the
    file equal, the tower OpenAI's ViT-L/14."""
    large = Config.fromfile(config_file(method, bench, default, 'vit-l14'))
    base = Config.fromfile(config_file(method, bench, default))
    assert read_settings(large) == read_settings(base)
    backbone = large.model.backbone
    assert {k: backbone[k] for k in TOWERS['vit-l14']} == TOWERS['vit-l14']
    tower_keys = set(TOWERS['vit-l14'])
    assert ({k: v for k, v in backbone.items() if k not in tower_keys} ==
            {k: v for k, v in base.model.backbone.items()
             if k not in tower_keys})
    head = large.model.decode_head
    assert (head.in_channels, head.text_channels, head.clip_pretrained) == (
        1024, 768, 'pretrained/ViT-L-14.pt')
    assert large.clip_file == 'pretrained/ViT-L-14.pt'
    drop = ('backbone', 'decode_head')
    assert ({k: v for k, v in large.model.items() if k not in drop} ==
            {k: v for k, v in base.model.items() if k not in drop})
    shared = ('in_channels', 'text_channels', 'clip_pretrained')
    assert ({k: v for k, v in head.items() if k not in shared} ==
            {k: v for k, v in base.model.decode_head.items()
             if k not in shared})
    assert large.test_dataloader == base.test_dataloader
    assert large.get('tta_pipeline') == base.get('tta_pipeline')


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=osp.basename)
def test_windows_and_sizes_are_whole_patches(path):
    """Slide windows, strides and the short side (each TTA scale's too)
    are multiples of the patch: no window drops a partial patch."""
    cfg = Config.fromfile(path)
    patch = cfg.model.backbone.patch_size
    assert patch == tower_of(path)['patch_size']
    test_cfg = cfg.model.test_cfg
    sizes = [cfg.short_side]
    if test_cfg.mode == 'slide':
        sizes += list(test_cfg.crop_size) + list(test_cfg.stride)
    assert [s % patch for s in sizes] == [0] * len(sizes), sizes
    if cfg.model.get('vfm'):  # ProxyCLIP: the VFM's patches too
        from denseclip.vfm import read_vfm_arch
        vfm_patch = read_vfm_arch(cfg.model.vfm.pretrained).patch_size
        assert [s % vfm_patch for s in sizes] == [0] * len(sizes), sizes


@pytest.fixture(scope='module')
def patch14_clip(tmp_path_factory):
    """A toy ViT CLIP of 14 px patches (56 px, a 4 x 4 grid): ViT-L/14's
    patch at the toy's width."""
    from denseclip.toy.clip_model import (TOY_VIT, build_openai_clip,
                                          write_clip_checkpoint)
    shape = dict(TOY_VIT, vision_patch_size=14, image_resolution=56)
    model = build_openai_clip(seed=4, **shape)
    path = write_clip_checkpoint(
        model, str(tmp_path_factory.mktemp('p14') / 'toy_vit14.pt'))
    return argparse.Namespace(jit=str(path), shape=shape)


@pytest.mark.parametrize('method', METHODS)
def test_vit_l14_config_runs_on_a_patch14_stand_in(method, patch14_clip,
                                                   tiny_vfm):
    """Each method's ViT-L/14 VOC21 config with its tower shrunk (patch 14
    kept) through cfg_options: windows of 224 / 112 (448 / 224 for
    ClearCLIP; NACLIP the whole image) over a 14 px grid, labels of the
    image's size."""
    from mmengine.config import DictAction
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(config_file(method, 'voc21', clip='vit-l14'))
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = tiny_options(patch14_clip) + tiny_scclip_layers(method) + \
        tiny_vfm_options(method, tiny_vfm) + [
        'model.backbone.patch_size=14']
    cfg.merge_from_dict(parser.parse_args(
        ['--cfg-options'] + options).cfg_options)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    assert model.backbone.conv1.weight.shape[-2:] == (14, 14)
    image = torch.randint(0, 256, (3, 224, 294), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(
        ori_shape=(40, 52), img_shape=(224, 294), pad_shape=(224, 294),
        padding_size=[0, 0, 0, 0]))
    data = model.data_preprocessor(dict(inputs=[image],
                                        data_samples=[sample]))
    with torch.no_grad():
        (result, ) = model.predict(data['inputs'], data['data_samples'])
    labels = result.pred_sem_seg.data
    assert labels.shape == (1, 40, 52)
    assert 0 <= int(labels.min()) and int(labels.max()) < 21
