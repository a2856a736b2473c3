"""TrainingFreeSegmentor's protocol: scores per name (whole or batched slide
windows) -> PAMR -> softmax(logit_scale * .) over all names -> max over
synonyms -> prob_thd -> argmax, checked against that order written out
(as NACLIP's segmentor computes it), for chunks of names and all at once."""
import copy

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from denseclip_helpers import load_tool
from maskclip_helpers import toy_maskclip_cfg
from mmengine.config import ConfigDict
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from denseclip.apis import maskclip_model_cfg
from denseclip.models.postprocess import PAMR
from denseclip.clip.class_names import ClassNames

# background as 3 words, a class with 2 synonyms: 6 classes, 9 names
SYNONYMS = [['sky', 'wall', 'road'], 'cat', ['person', 'person in shirt'],
            'car', 'tree', 'boat']
CLASSES = torch.tensor(ClassNames(SYNONYMS).query_class)
PADDED = dict(ori_shape=(75, 113), img_shape=(60, 91), pad_shape=(64, 96),
              padding_size=[0, 5, 0, 4])


def build(clip, tmp_path, logits=None, **settings):
    test_cfg = settings.pop('test_cfg', dict(mode='whole'))
    cfg = toy_maskclip_cfg(clip, SYNONYMS, cache_dir=str(tmp_path))
    cfg.update(settings)
    cfg.test_cfg = test_cfg
    model = MODELS.build(cfg).eval()
    if logits is not None:
        model.decode_head.forward = lambda feats: logits
    return model


def predict(model, inputs, meta):
    samples = [SegDataSample(metainfo=copy.deepcopy(meta))
               for _ in range(inputs.shape[0])]
    with torch.no_grad():
        return model.predict(inputs, samples)


def expected_labels(logits, image, meta, logit_scale=40., prob_thd=0.,
                    pamr=None, at_head_resolution=True, area_thd=0.):
    """The protocol written out for one image: ``[H, W]`` labels."""
    if at_head_resolution:
        logits = F.interpolate(logits, meta['pad_shape'], mode='bilinear')
    left, right, top, bottom = meta['padding_size']
    H, W = logits.shape[2:]
    logits = logits[:, :, top:H - bottom, left:W - right]
    logits = F.interpolate(logits, meta['ori_shape'], mode='bilinear')
    if pamr is not None:
        image = image[:, :, top:H - bottom, left:W - right]
        image = F.interpolate(image, meta['ori_shape'], mode='bilinear')
        logits = pamr(image, logits)
    probs = torch.softmax(logits[0] * logit_scale, dim=0)
    per_class = torch.stack([probs[CLASSES == k].amax(0)
                             for k in range(int(CLASSES.max()) + 1)])
    if area_thd:  # SCLIP: small non-background classes zeroed
        area = F.one_hot(per_class.argmax(0), len(per_class)).sum((0, 1))
        keep = area[1:] > area_thd * area[1:].sum()
        per_class[1:] *= keep[:, None, None]
    top_prob, labels = per_class.max(0)
    labels[top_prob < prob_thd] = 0
    return labels


def random_logits(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(*shape, generator=g)


@pytest.mark.parametrize('chunk', [1, 4, 64, None])
@pytest.mark.parametrize('settings', [
    dict(), dict(prob_thd=0.5), dict(logit_scale=10., prob_thd=0.3),
    dict(prob_thd=0.3, pamr=dict(type='PAMR', num_iter=3, dilations=(2, 4))),
    dict(area_thd=0.2), dict(area_thd=0.2, prob_thd=0.3)
], ids=['argmax', 'threshold', 'scale', 'pamr', 'area', 'area+threshold'])
def test_labels_follow_the_protocol(rn_clip, tmp_path, settings, chunk):
    logits = random_logits((1, 9, 4, 6))
    model = build(rn_clip, tmp_path, logits,
                  test_cfg=dict(mode='whole', class_chunk=chunk),
                  **copy.deepcopy(settings))
    inputs = torch.randn(1, 3, 64, 96)
    got = predict(model, inputs, PADDED)[0].pred_sem_seg.data[0]
    pamr = settings.get('pamr')
    assert model.logit_scale == settings.get('logit_scale', 40.)
    expected = expected_labels(
        logits, inputs, PADDED, model.logit_scale,
        settings.get('prob_thd', 0.),
        PAMR(num_iter=3, dilations=(2, 4)) if pamr else None,
        area_thd=settings.get('area_thd', 0.))
    assert got.shape == (75, 113)
    mismatch = (got != expected).float().mean().item()
    assert mismatch < 1e-3  # float ties at most
    if settings.get('prob_thd'):
        assert 0 < (got == 0).float().mean() < 1  # the threshold acts
    if settings.get('area_thd'):  # some class present without it is gone
        plain = expected_labels(logits, inputs, PADDED, model.logit_scale,
                                settings.get('prob_thd', 0.))
        assert set(got.unique().tolist()) < set(plain.unique().tolist())


def test_the_threshold_is_the_top_probability(rn_clip, tmp_path):
    """One name 0.05 above the other eight: the top probability is its
    softmax at the segmentor's default logit_scale 40; under prob_thd the
    pixel is background."""
    logits = torch.zeros(1, 9, 2, 2)
    logits[:, 3] = 0.05  # name 3, class 1 ('cat'), wins everywhere
    meta = dict(ori_shape=(8, 8), img_shape=(64, 64), pad_shape=(64, 64),
                padding_size=[0, 0, 0, 0])
    top = torch.softmax(logits[0, :, 0, 0] * 40, 0).max().item()
    for thd, label in ((top - 1e-4, 1), (top + 1e-4, 0)):
        for chunk in (2, None):
            model = build(rn_clip, tmp_path, logits, prob_thd=thd,
                          test_cfg=dict(mode='whole', class_chunk=chunk))
            out = predict(model, torch.zeros(1, 3, 64, 64), meta)[0]
            assert out.pred_sem_seg.data.unique().tolist() == [label]


def test_seg_logits_are_class_level(rn_clip, tmp_path):
    logits = random_logits((1, 9, 4, 6))
    model = build(rn_clip, tmp_path, logits,
                  test_cfg=dict(mode='whole', class_chunk=3))
    out = predict(model, torch.randn(1, 3, 64, 96), PADDED)[0]
    assert out.seg_logits.data.shape == (6, 4, 6)
    assert torch.equal(out.seg_logits.data[2], logits[0, 4:6].amax(0))
    full = build(rn_clip, tmp_path, logits, prob_thd=0.1,
                 test_cfg=dict(mode='whole', class_chunk=None))
    probs = predict(full, torch.randn(1, 3, 64, 96), PADDED)[0].seg_logits
    assert probs.data.shape == (6, 75, 113)


def test_slide_windows_are_batched_and_averaged(vit_clip, tmp_path):
    """Windows of both images go through the model crop_batch_size at a
    time; the labels equal the protocol over a window-by-window loop."""
    slide = dict(mode='slide', crop_size=(32, 32), stride=(16, 16))
    inputs = torch.randn(2, 3, 48, 64)
    meta = dict(ori_shape=(50, 70), img_shape=(48, 64), pad_shape=(48, 64),
                padding_size=[0, 0, 0, 0])
    model = build(vit_clip, tmp_path, prob_thd=0.2,
                  test_cfg=dict(slide, crop_batch_size=4, class_chunk=2))
    calls = []
    forward = model.decode_head.forward
    model.decode_head.forward = lambda feats: calls.append(
        feats[-1]['dense'].shape[0]) or forward(feats)
    got = predict(model, inputs, meta)
    # 2 x 3 windows per image, 12 in all: 3 forwards of 4
    assert calls == [4, 4, 4]
    model.decode_head.forward = forward
    with torch.no_grad():
        sums = torch.zeros(2, 9, 48, 64)
        count = torch.zeros(1, 1, 48, 64)
        for y1 in (0, 16):
            for x1 in (0, 16, 32):
                crop = inputs[:, :, y1:y1 + 32, x1:x1 + 32]
                scores = model.decode_head(model.extract_feat(crop))
                sums[:, :, y1:y1 + 32, x1:x1 + 32] += F.interpolate(
                    scores, (32, 32), mode='bilinear')
                count[:, :, y1:y1 + 32, x1:x1 + 32] += 1
    for i in range(2):
        expected = expected_labels((sums / count)[i:i + 1], None, meta,
                                   logit_scale=model.logit_scale,
                                   prob_thd=0.2, at_head_resolution=False)
        assert (got[i].pred_sem_seg.data[0] != expected).float().mean() < 1e-3


def test_without_protocol_parts_nothing_changes(rn_clip, tmp_path):
    """One name per class, no threshold, no PAMR, class_chunk=None: mmseg's
    own prediction (what existing MaskCLIP configs get)."""
    cfg = toy_maskclip_cfg(rn_clip, ['a', 'b', 'c'], cache_dir=str(tmp_path))
    cfg.test_cfg = dict(mode='whole', class_chunk=None)
    model = MODELS.build(cfg)
    assert not model.protocol and not model.chunked
    cfg.prob_thd = 0.1
    assert MODELS.build(cfg).chunked


@pytest.mark.parametrize('key, value, message', [
    ('logit_scale', 0, 'model.logit_scale must be a positive number'),
    ('logit_scale', 'x', 'model.logit_scale must be a positive number'),
    ('prob_thd', 1.5, r'model.prob_thd must be a probability in \[0, 1\]'),
    ('prob_thd', -0.1, r'model.prob_thd must be a probability'),
    ('area_thd', 1.0, r'model.area_thd must be a fraction in \[0, 1\)'),
])
def test_bad_settings_are_named(rn_clip, tmp_path, key, value, message):
    with pytest.raises(ValueError, match=f'TrainingFreeSegmentor: {message}'):
        build(rn_clip, tmp_path, **{key: value})
    with pytest.raises(TypeError, match='model.pamr must be None or a '
                       'config dict'):
        build(rn_clip, tmp_path, pamr='PAMR')
    with pytest.raises(ValueError, match='model.test_cfg.crop_batch_size '
                       'must be a positive integer'):
        build(rn_clip, tmp_path,
              test_cfg=ConfigDict(mode='slide', crop_batch_size=0))


# --- the methods' settings in one place, and the demo -----------------------
@pytest.mark.parametrize('method, mode, scale, slide', [
    ('maskclip', 'maskclip', 100., None), ('sclip', 'sclip', 40., 224),
    ('clearclip', 'clearclip', 50., 448), ('naclip', 'naclip', 40., 224)])
def test_the_factory_gives_each_methods_settings(vit_clip, method, mode,
                                                 scale, slide):
    cfg = maskclip_model_cfg(vit_clip.jit, SYNONYMS, method=method)
    assert cfg.backbone.dense_last_block['mode'] == mode
    assert 'pamr' not in cfg and 'prob_thd' not in cfg
    # MaskCLIP without a threshold needs no scale: EncoderDecoder builds it
    assert cfg.get('logit_scale') == (None if method == 'maskclip' else scale)
    assert maskclip_model_cfg(vit_clip.jit, SYNONYMS, method=method,
                              prob_thd=0.1).logit_scale == scale
    assert cfg.decode_head.templates == (
        'imagenet85' if method == 'maskclip' else 'imagenet80')
    if slide is None:
        assert cfg.test_cfg.mode == 'whole'
    else:
        assert cfg.test_cfg.crop_size == (slide, slide)
        assert cfg.test_cfg.stride == (slide // 2, slide // 2)
    model = MODELS.build(cfg)
    assert model.backbone.dense_last_block.mode == mode
    assert model.decode_head.query_class.tolist() == CLASSES.tolist()
    with_pamr = maskclip_model_cfg(vit_clip.jit, SYNONYMS, method=method,
                                   pamr=True, prob_thd=0.2)
    assert with_pamr.pamr == dict(type='PAMR', num_iter=10, dilations=(8, 16))
    assert MODELS.build(with_pamr).pamr.num_iter == 10


def test_the_factory_names_what_a_resnet_cannot_do(rn_clip):
    with pytest.raises(ValueError, match=r'toy_rn.pt is a CLIP ResNet; '
                       r'naclip changes the last attention block of a CLIP '
                       r'ViT'):
        maskclip_model_cfg(rn_clip.jit, ['a', 'b'], method='naclip')
    with pytest.raises(ValueError, match="unknown training-free method 'x'"):
        maskclip_model_cfg(rn_clip.jit, ['a', 'b'], method='x')


def test_vision_heads_for_files_that_do_not_follow_openais_rule(vit_clip,
                                                                rn_clip):
    """A state dict does not record its heads: OpenAI's width // 64 unless
    given (the toy ViT CLIP of the toy table has 4 at width 128); a
    TorchScript file does, and contradicting it is an error
    (tests/test_clip_heads.py)."""
    width = vit_clip.shape['vision_width']
    default = maskclip_model_cfg(vit_clip.state_dict, ['a', 'b'],
                                 method='naclip')
    assert default.backbone.heads == max(width // 64, 1)
    four = maskclip_model_cfg(vit_clip.state_dict, ['a', 'b'],
                              method='naclip', vision_heads=4)
    assert four.backbone.heads == 4
    with pytest.raises(ValueError, match=r'toy_vit.pt records 1 attention '
                       r'head in its image tower, but vision_heads=4'):
        maskclip_model_cfg(vit_clip.jit, ['a', 'b'], vision_heads=4)
    with pytest.raises(ValueError, match='vision_heads is for a CLIP ViT; '
                       r'.*toy_rn.pt is a CLIP ResNet'):
        maskclip_model_cfg(rn_clip.jit, ['a', 'b'], vision_heads=4)


def demo_run(clip, tmp_path, *extra):
    demo = load_tool('maskclip_demo')
    image = str(tmp_path / 'photo.png')
    cv2.imwrite(image, np.random.default_rng(0).integers(
        0, 256, (40, 56, 3), dtype=np.uint8))
    out = str(tmp_path / 'out.png')
    args = [image, '--clip', clip.jit, '--out', out, '--templates', 'single',
            '--text-heads', str(clip.shape['transformer_heads']),
            '--cache-dir', str(tmp_path / 'cache'), *extra]
    return demo, demo.main(args), cv2.imread(out), args


def test_demo_methods_pamr_and_synonyms(vit_clip, tmp_path, capsys):
    demo, rc, out, args = demo_run(vit_clip, tmp_path, '--classes',
                                   'sky|cloud, red car ,tree|bush|hedge',
                                   '--pamr', '--prob-thd', '0.4')
    # the image, and the legend beside it (inside it would cover too much)
    assert rc == 0 and out.shape[0] == 40 and out.shape[1] > 56
    printed = capsys.readouterr().out
    assert 'naclip: slide inference, images fit in 2048x336, PAMR' in printed
    parsed = demo.make_parser().parse_args(args)
    names = demo.parse_class_names(parsed, None)
    assert names.synonyms == (('sky', 'cloud'), ('red car', ),
                              ('tree', 'bush', 'hedge'))
    for method in ('maskclip', 'sclip', 'clearclip'):
        _, rc, out, _ = demo_run(vit_clip, tmp_path, '--classes', 'a,b|c',
                                 '--method', method)
        assert rc == 0 and out.shape[0] == 40 and out.shape[1] > 56
        assert f'{method}: ' in capsys.readouterr().out


def test_demo_default_method_follows_the_clip_file(vit_clip, rn_clip,
                                                   tmp_path, capsys):
    demo_run(rn_clip, tmp_path, '--classes', 'a,b')
    assert 'maskclip: whole inference, images fit in 2048x512' in \
        capsys.readouterr().out
    with pytest.raises(SystemExit):
        demo_run(rn_clip, tmp_path, '--classes', 'a,b', '--method', 'sclip')
    assert 'is a CLIP ResNet; sclip changes' in capsys.readouterr().err
