"""The MaskCLIP reference's released MaskCLIP+ checkpoints (mmseg 0.x files
whose decode_head holds the teacher) load into MaskClipPlus: files built in
that layout, tiny for the numbers, full-size on the meta device for the key
sets of the configs of the released models."""
import os.path as osp
import re
import sys
from types import SimpleNamespace

import pytest
import torch
from maskclip_helpers import NAMES, toy_maskclip_cfg
from mmengine.config import Config, ConfigDict
from mmengine.runner.checkpoint import load_checkpoint
from mmseg.registry import MODELS
from tiny_runner import CLASSES, runner_cfg, write_dataset

from denseclip.engine import (CheckpointFitError, CheckpointFitHook,
                              checkpoint_fit)
from denseclip_helpers import load_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]

# our name -> the reference's, under decode_head
OURS_TO_REFERENCE = {
    'decode_module.conv_seg.text_embeddings': 'text_embeddings',
    'decode_module.conv_seg.bg_embedding': 'bg_embeddings',
}

STUDENTS = {
    'deeplabv2': dict(type='ASPPV2Head', dilations=(1, 2), norm_act=True),
    'deeplabv3plus': dict(type='DepthwiseSeparableASPPHead',
                          dilations=(1, 2), c1_in_channels=8, c1_channels=4),
}


def teacher_entries(kind, width=8, text=64):
    """A few entries of the reference's teacher inside decode_head: its CLIP
    image encoder (``ResNetClip`` / ``VisionTransformer``) and projections."""
    if kind == 'rn':
        entries = {
            'clip.stem.0.weight': (width, 3, 3, 3),
            'clip.stem.1.running_var': (width, ),
            'clip.layer4.0.conv1.weight': (width, width, 1, 1),
        }
        for name in ('q_proj', 'k_proj', 'v_proj'):
            entries[f'{name}.weight'] = (width, width, 1, 1)
            entries[f'{name}.bias'] = (width, )
        entries.update({'c_proj.weight': (text, width, 1, 1),
                        'c_proj.bias': (text, )})
    else:
        entries = {
            'clip.cls_token': (1, 1, width),
            'clip.pos_embed': (1, 17, width),
            'clip.patch_embed.projection.weight': (width, 3, 16, 16),
            'clip.layers.0.attn.attn.in_proj_weight': (3 * width, width),
            'proj.weight': (text, width, 1, 1),
        }
    return {f'decode_head.{k}': torch.randn(shape)
            for k, shape in entries.items()}


def reference_state_dict(model_state, teacher='rn', text=64):
    """``model_state`` (ours) as the reference saves the same model."""
    state = {}
    for key, value in model_state.items():
        if key == 'train_iter':
            continue
        local = key[len('decode_head.'):]
        if local in OURS_TO_REFERENCE:
            key = 'decode_head.' + OURS_TO_REFERENCE[local]
        state[key] = value.clone()
    state['decode_head._iter_counter'] = torch.tensor(4000)
    state.update(teacher_entries(teacher, text=text))
    return state


def student_cfg(rn_clip, tmp_path, student='deeplabv2', bg=False,
                names=NAMES):
    text = rn_clip.shape['embed_dim']
    return ConfigDict(
        type='MaskClipPlus',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=IMAGENET_MEAN,
                               std=IMAGENET_STD, bgr_to_rgb=True, pad_val=0,
                               seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, norm_cfg=dict(type='BN')),
        decode_head=dict(
            type='MaskClipPlusHead', decode_module=dict(STUDENTS[student]),
            in_channels=64, in_index=3, channels=text, text_channels=text,
            num_classes=len(names) + int(bg), bg_embedding=bg,
            dropout_ratio=0., norm_cfg=dict(type='BN'),
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        teacher=toy_maskclip_cfg(rn_clip, names,
                                 cache_dir=str(tmp_path / 'cache')),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def randomise(model, seed):
    """Random values in every tensor (BN variances positive)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=gen)
            value.copy_(noise.abs() + 0.5 if 'running_var' in key else noise)
    return model


@pytest.fixture
def load_log(monkeypatch):
    """What MaskClipPlus logs while loading."""
    module = sys.modules['denseclip.models.segmentors.maskclip_plus']
    lines = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, *args, **kwargs: lines.append(msg))
    return lines


def outputs(model, seed=0):
    images = torch.randn(2, 3, 48, 48,
                         generator=torch.Generator().manual_seed(seed))
    metas = [dict(img_shape=(48, 48), ori_shape=(48, 48),
                  pad_shape=(48, 48), padding_size=[0, 0, 0, 0])] * 2
    with torch.no_grad():
        return model.eval().encode_decode(images, metas)


@pytest.mark.parametrize('student, bg, teacher', [
    ('deeplabv2', False, 'rn'),
    ('deeplabv2', True, 'vit'),
    ('deeplabv3plus', True, 'rn'),
    ('deeplabv3plus', False, 'vit'),
])
def test_a_reference_file_gives_the_same_student(rn_clip, tmp_path, load_log,
                                                 student, bg, teacher):
    cfg = student_cfg(rn_clip, tmp_path, student, bg)
    trained = randomise(MODELS.build(cfg), seed=1)
    state = reference_state_dict(trained.state_dict(), teacher)
    n_teacher = len(teacher_entries(teacher))
    path = str(tmp_path / 'released.pth')
    torch.save({'meta': {'iter': 4000, 'CLASSES': tuple(NAMES)},
                'state_dict': state}, path)

    model = randomise(MODELS.build(cfg), seed=2)
    assert not torch.equal(outputs(model), outputs(trained))
    checkpoint = torch.load(path, map_location='cpu')
    fit = checkpoint_fit(model, checkpoint)
    assert (fit.found, fit.missing, fit.unexpected,
            fit.mismatched) == (fit.total, [], [], [])
    # strict: any missing or unexpected key raises
    load_checkpoint(model, path, map_location='cpu', strict=True)

    assert torch.equal(outputs(model), outputs(trained))
    assert int(model.train_iter) == 0  # fine-tuning from it starts anew
    loaded = model.decode_head.classifier
    assert torch.equal(loaded.text_embeddings,
                       state['decode_head.text_embeddings'])
    if bg:
        assert torch.equal(loaded.bg_embedding,
                           state['decode_head.bg_embeddings'])
    said = [line for line in load_log if 'reference' in line]
    assert len(said) == 1
    assert re.search(rf'dropped its {n_teacher} teacher entries', said[0])
    assert 'not part of this model' in said[0]
    assert '_iter_counter ignored' in said[0]


def test_our_own_checkpoint_loads_without_conversion(rn_clip, tmp_path,
                                                     load_log):
    cfg = student_cfg(rn_clip, tmp_path)
    trained = randomise(MODELS.build(cfg), seed=1)
    model = MODELS.build(cfg)
    model.load_state_dict(trained.state_dict())
    assert torch.equal(outputs(model), outputs(trained))
    assert load_log == []


def test_a_missing_student_key_is_still_reported(rn_clip, tmp_path):
    cfg = student_cfg(rn_clip, tmp_path)
    state = reference_state_dict(
        randomise(MODELS.build(cfg), seed=1).state_dict())
    gone = 'decode_head.decode_module.aspp_modules.1.conv.weight'
    del state[gone]
    model = MODELS.build(cfg)
    result = model.load_state_dict(dict(state), strict=False)
    assert (result.missing_keys, result.unexpected_keys) == ([gone], [])
    fit = checkpoint_fit(model, {'state_dict': state})
    assert fit.missing == [gone] and fit.found == fit.total - 1
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': state}, path)
    with pytest.raises(RuntimeError, match=re.escape(gone)):
        load_checkpoint(MODELS.build(cfg), path, strict=True)


# ------------------------------------------- the released models' configs
def _bn(prefix, n):
    shapes = {f'{prefix}.bn.{k}': (n, ) for k in
              ('weight', 'bias', 'running_mean', 'running_var')}
    shapes[f'{prefix}.bn.num_batches_tracked'] = ()
    return shapes


def _conv(prefix, out, inp, k):
    return {f'{prefix}.conv.weight': (out, inp, k, k), **_bn(prefix, out)}


def _separable(prefix, inp, out):
    return {**_conv(f'{prefix}.depthwise_conv', inp, 1, 3),
            **_conv(f'{prefix}.pointwise_conv', out, inp, 1)}


def reference_student_shapes(kind, channels, in_channels=2048):
    """decode_module's entries in the reference's files, as its
    ASPPHeadV2 / DepthwiseSeparableASPPHead (mmseg 0.x) build them with the
    configs' SyncBN and without conv_seg / dropout."""
    c = channels
    if kind == 'deeplabv2':
        shapes = {}
        for i, d in enumerate((6, 12, 18, 24)):
            shapes.update(_conv(f'aspp_modules.{i}', c, in_channels, 3))
        return shapes
    shapes = _conv('image_pool.1', c, in_channels, 1)
    shapes.update(_conv('aspp_modules.0', c, in_channels, 1))  # dilation 1
    for i in (1, 2, 3):  # dilations 12, 24, 36
        shapes.update(_separable(f'aspp_modules.{i}', in_channels, c))
    shapes.update(_conv('bottleneck', c, 5 * c, 3))
    shapes.update(_conv('c1_bottleneck', 48, 256, 1))
    shapes.update(_separable('sep_bottleneck.0', c + 48, c))
    shapes.update(_separable('sep_bottleneck.1', c, c))
    return shapes


# config, student, text width, text classes, background embedding
RELEASED = [
    ('annotation_free/maskclip_plus_r50_deeplabv2_r101_512x512_2k_'
     'voc12aug_20.py', 'deeplabv2', 1024, 20, False),
    ('annotation_free/maskclip_plus_r50x16_deeplabv2_r101_512x512_2k_'
     'voc12aug_20.py', 'deeplabv2', 768, 20, False),
    ('annotation_free/maskclip_plus_r50_deeplabv2_r101_480x480_4k_'
     'pascal_context_59.py', 'deeplabv2', 1024, 59, False),
    ('annotation_free/maskclip_plus_r50x16_deeplabv2_r101_480x480_4k_'
     'pascal_context_59.py', 'deeplabv2', 768, 59, False),
    ('annotation_free/maskclip_plus_vit16_deeplabv2_r101_480x480_4k_'
     'pascal_context_59.py', 'deeplabv2', 512, 59, False),
    ('annotation_free/maskclip_plus_vit16_deeplabv2_r50_480x480_4k_'
     'pascal_context_59.py', 'deeplabv2', 512, 59, False),
    ('annotation_free/maskclip_plus_r50_deeplabv2_r101_512x512_8k_'
     'coco-stuff164k.py', 'deeplabv2', 1024, 171, False),
    ('annotation_free/maskclip_plus_r50x16_deeplabv2_r101_512x512_8k_'
     'coco-stuff164k.py', 'deeplabv2', 768, 171, False),
    ('annotation_free/maskclip_plus_vit16_deeplabv2_r101_512x512_8k_'
     'coco-stuff164k.py', 'deeplabv2', 512, 171, False),
    ('annotation_free/maskclip_plus_vit16_deeplabv2_r50_512x512_8k_'
     'coco-stuff164k.py', 'deeplabv2', 512, 171, False),
    ('zero_shot/maskclip_plus_r50_deeplabv2_r101_512x512_20k_voc12aug_20.py',
     'deeplabv2', 1024, 20, False),
    ('zero_shot/maskclip_plus_r50_deeplabv3plus_r101_480x480_40k_'
     'pascal_context.py', 'deeplabv3plus', 1024, 59, True),
    ('zero_shot/maskclip_plus_r50_deeplabv2_r101_512x512_80k_'
     'coco-stuff164k.py', 'deeplabv2', 1024, 171, False),
]


def meta_model(config):
    """The config's model on the meta device (structure only)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/maskclip_plus', config))
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def reference_file_of(model, student, width, classes, bg, vit):
    """A state dict in the reference's layout (meta tensors) of the
    student ``model`` builds."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # the backbone: mmseg's ResNetV1c, named alike in 0.x and 1.x
    shapes = {k: s for k, s in own.items() if k.startswith('backbone.')}
    head = {f'decode_module.{k}': s
            for k, s in reference_student_shapes(student, width).items()}
    head.update({'text_embeddings': (classes, width), '_iter_counter': ()})
    if bg:
        head['bg_embeddings'] = (1, width)
    shapes.update({f'decode_head.{k}': s for k, s in head.items()})
    state = {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    state.update(teacher_entries('vit' if vit else 'rn', text=width))
    return state


@pytest.mark.parametrize('config, student, width, classes, bg', RELEASED,
                         ids=[r[0].split('/')[-1][14:-3] for r in RELEASED])
def test_released_models_fit_their_configs_key_for_key(config, student,
                                                       width, classes, bg):
    model = meta_model(config)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = reference_file_of(model, student, width, classes, bg,
                              'vit16' in config)
    converted = model.convert_state_dict(state)
    assert {k: tuple(v.shape) for k, v in converted.items()} == own
    fit = checkpoint_fit(model, {'state_dict': state})
    assert fit.fits and fit.found == fit.total


# the released ViT-B/16 students: ResNet-50 (the reference's config) or
# ResNet-101 (the file names); (setting, file's depth, config's depth)
VIT16_SETTINGS = ['480x480_4k_pascal_context_59', '512x512_8k_coco-stuff164k']


def vit16_config(setting, depth):
    return (f'annotation_free/maskclip_plus_vit16_deeplabv2_r{depth}_'
            f'{setting}.py')


@pytest.mark.parametrize('setting', VIT16_SETTINGS)
@pytest.mark.parametrize('theirs, ours', [(50, 101), (101, 50)])
def test_a_vit16_student_of_the_other_depth_names_its_config(setting, theirs,
                                                             ours):
    """A ResNet-50 student's file on the R-101 config left stage 3's
    blocks 6-22 random after a warning (306 of 662 tensors); an R-101 file
    on the R-50 config would drop them. Both stop, naming the config the
    file fits."""
    classes = 59 if 'context' in setting else 171
    state = reference_file_of(meta_model(vit16_config(setting, theirs)),
                              'deeplabv2', 512, classes, False, True)
    config = osp.join(ROOT, 'configs/maskclip_plus',
                      vit16_config(setting, ours))
    runner = SimpleNamespace(model=meta_model(vit16_config(setting, ours)),
                             cfg=Config.fromfile(config))
    hook = CheckpointFitHook(filename='released.pth')
    with pytest.raises(CheckpointFitError) as info:
        hook.after_load_checkpoint(runner, {'meta': {}, 'state_dict': state})
    message = str(info.value)
    other = osp.join(ROOT, 'configs/maskclip_plus',
                     vit16_config(setting, theirs))
    blocks = {50: '3, 4, 6, 3', 101: '3, 4, 23, 3'}
    assert (f"The file's backbone is a ResNet-{theirs} (blocks per stage "
            f"{blocks[theirs]}; this config's ResNet-{ours}: {blocks[ours]})"
            f': it fits {other}.') in message, message
    assert message.startswith(f'checkpoint released.pth supplies 356 of the '
                              f'{662 if ours == 101 else 356} tensors '
                              f'(parameters and buffers) of the model of '
                              f'{config} with their names and shapes. ')
    if ours == 101:
        assert '. Left at their initial values: backbone.layer3.6-22: 306 ' \
            "tensors. The file's backbone" in message
    else:  # nothing left out, 17 blocks of the file unused
        assert 'Left at' not in message
        assert 'Unexpected keys (306): backbone.layer3.6.conv1.weight' \
            in message
    hook = CheckpointFitHook(filename='released.pth', allow_partial=True)
    hook.after_load_checkpoint(runner, {'meta': {}, 'state_dict': state})


# --------------------------------------------------------- tools/test.py
@pytest.mark.slow
def test_tools_test_runs_a_released_file(rn_clip, tmp_path, load_log,
                                         monkeypatch):
    root = str(tmp_path / 'data')
    write_dataset(root)
    cfg = runner_cfg(root, str(tmp_path / 'work'), 'released')
    cfg.model = student_cfg(rn_clip, tmp_path, names=list(CLASSES))
    cfg.model.data_preprocessor.size = (32, 32)
    config = str(tmp_path / 'released.py')
    cfg.dump(config)
    trained = randomise(MODELS.build(cfg.model), seed=1)
    path = str(tmp_path / 'released.pth')
    torch.save({'meta': {}, 'state_dict': reference_state_dict(
        trained.state_dict())}, path)
    fit_lines = []
    monkeypatch.setattr(sys.modules['denseclip.engine.checkpoint_fit'],
                        'print_log',
                        lambda msg, *args, **kwargs: fit_lines.append(msg))
    metrics = load_tool('test').main([config, path, '--work-dir',
                                      str(tmp_path / 'work')])
    assert 'mIoU' in metrics
    total = len(trained.state_dict())
    assert fit_lines == [f"{path} supplies {total} of the model's {total} "
                         'tensors']
    assert len([line for line in load_log if 'reference' in line]) == 1
