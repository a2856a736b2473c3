"""MaskClipPlus(distill=True): an L1 loss between the student's features and
CLIP's dense features instead of pseudo labels (the paper's ablation)."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from maskclip_helpers import NAMES, reference_resnet_dense, toy_maskclip_cfg
from mmengine.config import Config, ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from denseclip.clip.normalization import CLIP_MEAN, CLIP_STD

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
U = 254  # MarkUnlabeled's marker


def build(rn_clip, tmp_path, **overrides):
    """Zero-shot: classes 2 and 3 unseen, 0 and 1 keep their labels."""
    overrides.setdefault('unseen_classes', [2, 3])
    text = rn_clip.shape['embed_dim']
    cfg = ConfigDict(
        type='MaskClipPlus',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=IMAGENET_MEAN,
                               std=IMAGENET_STD, bgr_to_rgb=True, pad_val=0,
                               seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, norm_cfg=dict(type='BN')),
        decode_head=dict(
            type='MaskClipPlusHead',
            decode_module=dict(type='ASPPV2Head', dilations=(1, 2)),
            in_channels=64, in_index=3, channels=text, text_channels=text,
            num_classes=len(NAMES), dropout_ratio=0.,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        teacher=toy_maskclip_cfg(rn_clip, cache_dir=str(tmp_path / 'cache')),
        train_cfg=dict(), test_cfg=dict(mode='whole'), **overrides)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def batch(seed=0):
    """RGB images 0..255 and labels: class 1 (seen) on the left third,
    unlabeled in the middle, ignored on the right."""
    gen = torch.Generator().manual_seed(seed)
    raw = torch.rand(2, 3, 64, 64, generator=gen) * 255
    gt = torch.full((2, 64, 64), 255, dtype=torch.long)
    gt[:, :, :22] = 1
    gt[:, :, 22:44] = U
    return raw, gt


def samples(gt):
    out = []
    for labels in gt:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=labels[None].clone())
        sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64),
                                 pad_shape=(64, 64),
                                 padding_size=[0, 0, 0, 0]))
        out.append(sample)
    return out


def normalise(raw, mean, std):
    return (raw - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std).view(1, 3, 1, 1)


def run_loss(model, raw, gt):
    """The losses, the student's features (the classifier's input, seen by
    a hook of the test's own) and the labels the CE saw."""
    seen = []
    handle = model.decode_head.classifier.register_forward_pre_hook(
        lambda module, args: seen.append(args[0]))
    data = samples(gt)
    try:
        losses = model.loss(normalise(raw, IMAGENET_MEAN, IMAGENET_STD), data)
    finally:
        handle.remove()
    return losses, seen[0], torch.stack([s.gt_sem_seg.data[0] for s in data])


@pytest.mark.parametrize('labeled', [True, False])
def test_the_loss_is_an_l1_between_the_feature_maps(rn_clip, tmp_path,
                                                    labeled):
    model = build(rn_clip, tmp_path, distill=True, distill_weight=0.5,
                  distill_labeled=labeled)
    raw, gt = batch()
    losses, student, _ = run_loss(model, raw, gt)
    # CLIP's dense features from the OpenAI model's own modules
    teacher = F.normalize(reference_resnet_dense(
        rn_clip.model, normalise(raw, CLIP_MEAN, CLIP_STD)), dim=1)
    student, teacher = (F.interpolate(f, size=(64, 64), mode='bilinear',
                                      align_corners=False)
                        for f in (student.detach(), teacher))
    mask = gt != 255 if labeled else gt == U
    diff = (student - teacher).abs().permute(0, 2, 3, 1)[mask]
    expected = 0.5 * diff.mean()
    assert diff.shape == (int(mask.sum()), rn_clip.shape['embed_dim'])
    torch.testing.assert_close(losses['decode.loss_distill'].detach(),
                               expected, rtol=1e-4, atol=1e-6)


def test_the_student_learns_from_it_and_the_teacher_gets_no_gradient(
        rn_clip, tmp_path):
    model = build(rn_clip, tmp_path, distill=True)
    raw, gt = batch()
    losses, _, _ = run_loss(model, raw, gt)
    losses['decode.loss_distill'].backward()
    student = model.decode_head.decode_module.aspp_modules[0].weight.grad
    assert student is not None and student.abs().sum() > 0
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    teacher = list(model.teacher.parameters())
    assert teacher and all(p.grad is None and not p.requires_grad
                           for p in teacher)


def test_unlabeled_pixels_get_no_pseudo_labels(rn_clip, tmp_path,
                                               monkeypatch):
    model = build(rn_clip, tmp_path, distill=True)

    def refuse(*args, **kwargs):
        raise AssertionError('pseudo labels asked for')

    monkeypatch.setattr(model, 'teacher_probabilities', refuse)
    raw, gt = batch()
    losses, _, seen = run_loss(model, raw, gt)
    assert torch.equal(seen, gt.masked_fill(gt == U, 255))
    assert set(losses) >= {'decode.loss_ce', 'decode.loss_distill'}


def test_off_by_default_adds_no_loss(rn_clip, tmp_path):
    model = build(rn_clip, tmp_path)
    assert model.distill is False
    raw, gt = batch()
    losses, _, seen = run_loss(model, raw, gt)
    assert not any('distill' in key for key in losses)
    assert not (seen == U).any() and (seen[gt == U] != 255).any()


def test_distillation_and_self_training_do_not_mix(rn_clip, tmp_path):
    with pytest.raises(ValueError, match=r'distill=True replaces pseudo '
                       r'labels.*self_train_from=-1 \(got 100\)'):
        build(rn_clip, tmp_path, distill=True, self_train_from=100)


def test_the_ablation_config_turns_it_on():
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/maskclip_plus/annotation_free/maskclip_plus_distill_'
        'vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py'))
    assert (cfg.model.distill, cfg.model.distill_labeled,
            cfg.model.distill_weight) == (True, True, 1.)
    assert cfg.model.self_train_from == -1
