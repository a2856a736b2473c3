"""MaskCLIP+: pseudo labels from a frozen MaskCLIP teacher, zero-shot, self-training."""
import copy
import os.path as osp
import re

import numpy as np
import pytest
import torch
from maskclip_helpers import NAMES, toy_maskclip_cfg
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS, TRANSFORMS
from mmseg.structures import SegDataSample

from denseclip.clip.normalization import CLIP_MEAN, CLIP_STD
from denseclip.models.segmentors.maskclip_plus import assign_pseudo_labels
from denseclip.clip.text_embedding_file import TextEmbeddingFileError

IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
U = 254  # MarkUnlabeled's marker


def student_cfg(rn_clip, tmp_path, bg=False, **overrides):
    """A tiny ResNet-18 DeepLabv2 student with a toy RN50-shaped teacher."""
    text_dim = rn_clip.shape['embed_dim']
    cfg = dict(
        type='MaskClipPlus',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=IMAGENET_MEAN,
                               std=IMAGENET_STD, bgr_to_rgb=True, pad_val=0,
                               seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, norm_cfg=dict(type='BN')),
        decode_head=dict(
            type='MaskClipPlusHead',
            decode_module=dict(type='ASPPV2Head', dilations=(1, 2)),
            in_channels=64, in_index=3, channels=text_dim,
            text_channels=text_dim, num_classes=len(NAMES) + int(bg),
            bg_embedding=bg, dropout_ratio=0.,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        teacher=toy_maskclip_cfg(rn_clip, cache_dir=str(tmp_path / 'cache')),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    cfg.update(overrides)
    return ConfigDict(cfg)


def build(rn_clip, tmp_path, **kwargs):
    model = MODELS.build(student_cfg(rn_clip, tmp_path, **kwargs))
    model.init_weights()
    return model


def raw_images(n=2, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 255  # RGB, 0..255


def normalise(images, mean, std):
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std).view(1, 3, 1, 1)


def samples_with(gt):
    out = []
    for labels in gt:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=labels[None].clone())
        h, w = labels.shape
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                                 pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
        out.append(sample)
    return out


def test_assign_pseudo_labels_unit():
    gt = torch.tensor([[[U, U, 0, 255]]])
    probs = torch.tensor([[[[0.9, 0.4, 0.9, 0.9]], [[0.1, 0.6, 0.1, 0.1]]]])
    out = assign_pseudo_labels(gt, probs, torch.tensor([2, 5]),
                               conf_thresh=0.65)
    assert out.tolist() == [[[2, 255, 0, 255]]]
    out = assign_pseudo_labels(gt, probs, torch.tensor([2, 5]))
    assert out.tolist() == [[[2, 5, 0, 255]]]


# The model computes the teacher's probabilities through another float path
# than the test (ImageNet-normalised inputs mapped back to CLIP's
# normalisation, then renormalised over the candidate classes): here they
# agree to ~1e-6, but another torch build, CPU or thread count moves them by a
# few ulps. A pixel whose confidence equals the threshold (the median of the
# confidences is one pixel's) or whose two best classes are nearly tied can
# then go either way. So the threshold is put in the widest gap between
# neighbouring confidences near the median, and pixels within MARGIN of it or
# with a near tie are left out of the comparison (they must be few).
MARGIN = 1e-4


def threshold_between_pixels(conf: torch.Tensor, window: int = 64) -> float:
    """A threshold near the median confidence, midway between the two
    neighbouring confidences that are farthest apart."""
    ranked = conf.flatten().sort().values
    mid = ranked.numel() // 2
    near = ranked[mid - window:mid + window].double()
    i = int((near[1:] - near[:-1]).argmax())
    return float((near[i] + near[i + 1]) / 2)


def test_teacher_pseudo_labels_are_maskclip_argmax_where_confident(
        rn_clip, tmp_path):
    model = build(rn_clip, tmp_path)
    teacher = MODELS.build(
        toy_maskclip_cfg(rn_clip, cache_dir=str(tmp_path / 'cache'))).eval()
    raw = raw_images()
    metas = [s.metainfo for s in samples_with(torch.zeros(2, 64, 64))]
    with torch.no_grad():
        out = teacher.encode_decode(normalise(raw, CLIP_MEAN, CLIP_STD), metas)
        probs = torch.softmax(out * 100, dim=1)
    conf, expected = probs.max(dim=1)
    top2 = probs.topk(2, dim=1).values
    thresh = threshold_between_pixels(conf)
    model.conf_thresh = thresh
    gt = torch.full((2, 64, 64), U, dtype=torch.long)
    gt[:, :4] = 255  # ignored pixels stay ignored
    inputs = normalise(raw, IMAGENET_MEAN, IMAGENET_STD)
    labels = model.pseudo_label(gt, inputs, None,
                                [s.metainfo for s in samples_with(gt)])
    labels, conf, expected = labels.cpu(), conf.cpu(), expected.cpu()
    top2 = top2.cpu()
    checked = ((conf - thresh).abs() > MARGIN) & (
        top2[:, 0] - top2[:, 1] > MARGIN)
    checked[:, :4] = False
    assert checked.sum() >= 0.97 * (2 * 60 * 64)  # the margins leave out few
    confident = checked & (conf > thresh)
    unconfident = checked & (conf < thresh)
    # a real split: about half the pixels on either side of the threshold
    assert confident.sum() > 2000 and unconfident.sum() > 2000
    assert torch.equal(labels[confident], expected[confident])
    assert (labels[unconfident] == 255).all()
    assert (labels[:, :4] == 255).all()


def test_zero_shot_keeps_seen_ground_truth_and_labels_only_unseen(
        rn_clip, tmp_path):
    model = build(rn_clip, tmp_path, unseen_classes=[2, 3])
    gt = torch.zeros(2, 64, 64, dtype=torch.long)
    gt[:, :, 32:] = 1
    gt[:, 20:40, 20:40] = U  # unseen-class pixels, marked by the pipeline
    inputs = normalise(raw_images(), IMAGENET_MEAN, IMAGENET_STD)
    labels = model.pseudo_label(gt, inputs, None,
                                [s.metainfo for s in samples_with(gt)])
    marked = gt == U
    assert torch.equal(labels[~marked], gt[~marked])
    assert set(labels[marked].unique().tolist()) <= {2, 3}


def test_leaked_unseen_ground_truth_is_an_error(rn_clip, tmp_path):
    model = build(rn_clip, tmp_path, unseen_classes=[2, 3])
    model.train()
    gt = torch.zeros(1, 64, 64, dtype=torch.long)
    gt[0, :8, :8] = 2  # 'tree' ground truth, not marked
    with pytest.raises(RuntimeError,
                       match=r"class 2 \('tree'\) reached training.*"
                       r'MarkUnlabeled\(classes=\[2, 3\]\)'):
        model.loss(normalise(raw_images(1), IMAGENET_MEAN, IMAGENET_STD),
                   samples_with(gt))


def train(model, steps, gt_fn):
    optim = build_optim_wrapper(
        model, dict(type='OptimWrapper',
                    optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    model.train()
    for step in range(steps):
        raw = raw_images(2, seed=step)
        losses = model.loss(normalise(raw, IMAGENET_MEAN, IMAGENET_STD),
                            samples_with(gt_fn()))
        assert all(torch.isfinite(v).all() for v in losses.values())
        optim.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    return optim


def test_teacher_is_frozen_and_outside_optimizer_and_checkpoint(
        rn_clip, tmp_path):
    model = build(rn_clip, tmp_path)
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.state_dict())
    optim = train(model, 3,
                  lambda: torch.full((2, 64, 64), U, dtype=torch.long))
    teacher_params = {id(p) for p in model.teacher.parameters()}
    in_optimizer = {id(p) for g in optim.optimizer.param_groups
                    for p in g['params']}
    assert not teacher_params & in_optimizer
    assert not model.teacher.training
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert not any(k.startswith('teacher') for k in model.state_dict())
    changed = [k for k, v in model.state_dict().items()
               if not torch.equal(v, student_before[k])]
    assert any(k.startswith('backbone.') for k in changed)
    # the classifier is the teacher's text embeddings and stays frozen
    emb = model.decode_head.classifier.text_embeddings
    torch.testing.assert_close(emb, model.teacher.decode_head.text_embeddings)


def test_self_training_replaces_teacher_from_configured_iteration(
        rn_clip, tmp_path):
    model = build(rn_clip, tmp_path, self_train_from=3)
    calls = []
    encode = model.teacher.encode_decode
    model.teacher.encode_decode = lambda *a: calls.append(1) or encode(*a)
    train(model, 4, lambda: torch.full((2, 64, 64), U, dtype=torch.long))
    assert len(calls) == 2  # iterations 1 and 2; 3 and 4 self-train
    assert model.self_training and int(model.train_iter) == 4
    assert model.state_dict()['train_iter'] == 4  # resumes where it was


def test_background_embedding_offsets_teacher_classes(rn_clip, tmp_path):
    model = build(rn_clip, tmp_path, bg=True)
    assert model.teacher_offset == 1 and model.num_classes == 5
    assert model.unseen_classes.tolist() == [1, 2, 3, 4]
    gt = torch.full((1, 64, 64), U, dtype=torch.long)
    labels = model.pseudo_label(
        gt, normalise(raw_images(1), IMAGENET_MEAN, IMAGENET_STD), None,
        [s.metainfo for s in samples_with(gt)])
    assert set(labels.unique().tolist()) <= {1, 2, 3, 4}
    with torch.no_grad():
        logits = model.decode_head(model.extract_feat(
            normalise(raw_images(1), IMAGENET_MEAN, IMAGENET_STD)))
    assert logits.shape[1] == 5
    assert model.decode_head.classifier.bg_embedding.requires_grad


def test_mark_unlabeled_transform():
    transform = TRANSFORMS.build(dict(type='MarkUnlabeled', classes=[1, 3]))
    seg = np.array([[0, 1, 2, 3, 255]], np.uint8)
    out = transform(dict(gt_seg_map=seg))['gt_seg_map']
    assert out.tolist() == [[0, 254, 2, 254, 255]] and out.dtype == np.uint8
    with pytest.raises(ValueError, match='at least one class'):
        TRANSFORMS.build(dict(type='MarkUnlabeled', classes=[]))


def test_student_without_embeddings_is_a_clear_error(rn_clip, tmp_path):
    model = MODELS.build(student_cfg(rn_clip, tmp_path))  # no init_weights
    with pytest.raises(RuntimeError, match='has no text embeddings'):
        model.decode_head(model.extract_feat(torch.randn(1, 3, 64, 64)))


def test_text_embeddings_file_of_wrong_size_names_both_shapes(
        rn_clip, tmp_path):
    path = str(tmp_path / 'emb.pth')
    torch.save(torch.randn(3, 64), path)
    cfg = student_cfg(rn_clip, tmp_path)
    cfg.decode_head.text_embeddings_path = path
    model = MODELS.build(cfg)
    with pytest.raises(TextEmbeddingFileError,
                       match=rf'{re.escape(path)} holds 3 class embeddings '
                       r'but MaskClipPlusHead has 4 text classes'):
        model.decode_head.init_weights()
    torch.save(torch.randn(4, 32), path)
    with pytest.raises(TextEmbeddingFileError,
                       match=r'holds embeddings of width 32 but '
                       r'MaskClipPlusHead has text_channels=64'):
        model.decode_head.init_weights()
    torch.save(dict(weight=torch.randn(4, 64)), path)
    with pytest.raises(TextEmbeddingFileError,
                       match=r'is not a text embedding file: expected a '
                       r'\[K, C\] tensor, got dict'):
        model.decode_head.init_weights()


def test_zero_shot_metric_reports_seen_unseen_and_harmonic_miou():
    from denseclip.evaluation import ZeroShotIoUMetric
    metric = ZeroShotIoUMetric(unseen_classes=[2, 3])
    metric.dataset_meta = dict(classes=['a', 'b', 'c', 'd'])
    # per class: intersect, union (IoU 1.0, 0.5, 0.25, 0.75)
    intersect = torch.tensor([4., 2., 1., 3.])
    union = torch.tensor([4., 4., 4., 4.])
    metrics = metric.compute_metrics([(intersect, union, union, union)])
    assert metrics['mIoU'] == 62.5
    assert metrics['mIoU_seen'] == 75.0 and metrics['mIoU_unseen'] == 50.0
    assert metrics['hIoU'] == 60.0


# ------------------------------------------------ a class must not collapse
# (on toy data the recipe was not tuned on, self-training on the student's
# own argmax over photometrically distorted crops lost a whole class; see
# docs/maskclip_plus.md, "Why a class collapsed")
def undistorted_samples(gt, raw):
    """Samples carrying ``img_undistorted`` as KeepUndistortedImage leaves it
    (HWC uint8, BGR as loaded), and the preprocessed undistorted batch."""
    raw = raw.round()
    samples = samples_with(gt)
    for sample, image in zip(samples, raw):
        sample.set_metainfo(dict(img_undistorted=image.flip(0).permute(
            1, 2, 0).to(torch.uint8).numpy()))
    return samples, normalise(raw, IMAGENET_MEAN, IMAGENET_STD)


def test_keep_undistorted_image_transform():
    transform = TRANSFORMS.build(dict(type='KeepUndistortedImage'))
    image = np.random.default_rng(0).integers(0, 255, (5, 7, 3), np.uint8)
    results = transform(dict(img=image))
    assert results['img_undistorted'] is not image
    np.testing.assert_array_equal(results['img_undistorted'], image)
    distort = TRANSFORMS.build(dict(type='PhotoMetricDistortion'))
    np.random.seed(0)
    distorted = distort(results)
    assert not np.array_equal(distorted['img'], image)
    np.testing.assert_array_equal(distorted['img_undistorted'], image)


@pytest.mark.parametrize('self_train', [False, True])
def test_pseudo_labels_come_from_the_undistorted_crop(rn_clip, tmp_path,
                                                      self_train):
    """With KeepUndistortedImage the teacher (and, self-training, the student)
    label the crop before PhotoMetricDistortion; the student trains on the
    distorted one. Before, the labels were read from the distorted crop."""
    model = build(rn_clip, tmp_path, self_train_from=1 if self_train else -1)
    model.train()
    gt = torch.full((2, 64, 64), U, dtype=torch.long)
    gt[:, :4] = 255
    raw = raw_images()
    samples, undistorted = undistorted_samples(gt, raw)
    torch.testing.assert_close(model.undistorted_inputs(undistorted, samples),
                               undistorted)
    distorted = normalise(255 - raw.round(), IMAGENET_MEAN, IMAGENET_STD)
    metas = [s.metainfo for s in samples]
    model.train_iter += int(self_train)  # as in loss(), which counts first
    expected = model.pseudo_label(gt, undistorted, None, metas)
    model.train_iter -= int(self_train)
    # what reads the labels: the teacher, or the student's own features
    name = 'extract_feat' if self_train else 'teacher_probabilities'
    seen, read = [], getattr(model, name)
    setattr(model, name, lambda x, *a: seen.append(x) or read(x, *a))
    model.loss(distorted, samples)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    assert torch.equal(labels, expected)
    assert any(torch.allclose(x, undistorted) for x in seen)
    if self_train:  # one forward to train on the distorted crop, one to label
        assert len(seen) == 2 and torch.allclose(seen[0], distorted)
    else:
        assert len(seen) == 1


def test_undistorted_crops_must_fit_the_batch(rn_clip, tmp_path):
    model = build(rn_clip, tmp_path)
    gt = torch.full((2, 64, 64), U, dtype=torch.long)
    samples, inputs = undistorted_samples(gt, raw_images())
    with pytest.raises(RuntimeError, match='larger than the batch'):
        model.undistorted_inputs(inputs[..., :32], samples)
    del samples[1].img_undistorted
    with pytest.raises(RuntimeError, match='some samples of the batch'):
        model.undistorted_inputs(inputs, samples)


def test_toy_recipe_labels_undistorted_crops_with_agreement():
    """configs/toy/maskclip_plus_toy.py keeps the crop before the colour
    change, packs it, shifts hue little, and self-trains only where the
    teacher agrees."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), 'configs/toy/maskclip_plus_toy.py'))
    types = [t['type'] for t in cfg.train_pipeline]
    keep = types.index('KeepUndistortedImage')
    assert types[keep + 1] == 'PhotoMetricDistortion'
    assert types.index('RandomCrop') < keep
    pack = cfg.train_pipeline[types.index('PackSegInputs')]
    assert 'img_undistorted' in pack['meta_keys']
    assert cfg.train_pipeline[keep + 1]['hue_delta'] <= 4
    assert cfg.model.self_train_agreement is True


def test_self_training_with_agreement_never_labels_against_the_teacher(
        rn_clip, tmp_path):
    """self_train_agreement: a self-training label stands only where the
    teacher gives the same class; elsewhere the pixel is ignored. A student
    that has come to paint one class over another's pixels (the collapse of
    issue 13) gets no label that reinforces it; without agreement it does."""
    gt = torch.full((2, 64, 64), U, dtype=torch.long)
    gt[:, :4] = 255
    teacher = torch.zeros(2, 4, 64, 64)
    teacher[:, 1, :, :32] = 1  # the teacher: class 1 left, class 2 right
    teacher[:, 2, :, 32:] = 1
    student = torch.zeros(2, 4, 16, 16)
    student[:, 1] = 5  # the student: class 1 everywhere
    student[:, 0, :2, :2] = 9  # and class 0 in a corner
    inputs = normalise(raw_images(), IMAGENET_MEAN, IMAGENET_STD)
    metas = [s.metainfo for s in samples_with(gt)]
    labels = {}
    for agreement in (False, True):
        model = build(rn_clip, tmp_path, self_train_from=1,
                      self_train_agreement=agreement)
        model.teacher_probabilities = lambda *args: teacher
        model.train_iter += 1
        labels[agreement] = model.pseudo_label(gt, inputs, student, metas)
    free, agreed = labels[False], labels[True]
    assert (free[:, 4:, 32:] == 1).all()  # the old way: class 2 is gone
    assert (agreed[:, 4:, 32:] == 255).all()  # now: ignored, not relabelled
    assert (agreed[:, 12:, :28] == 1).all()  # agreed pixels keep the label
    assert (agreed[:, 4:6, :6] == 255).all()  # the student's corner: ignored
    assert (agreed[:, :4] == 255).all()
    assert set(agreed.unique().tolist()) == {1, 255}


def test_a_teacher_with_synonyms_is_refused_by_name(rn_clip, tmp_path):
    """The student's classifier is one text embedding per class: a teacher
    whose class names carry synonyms stops with the counts, not a shape
    error inside the head."""
    cfg = student_cfg(rn_clip, tmp_path)
    names = list(NAMES)
    names[1] = [names[1], names[1] + ' thing']
    cfg.teacher.decode_head.class_names = names
    model = MODELS.build(cfg)
    with pytest.raises(ValueError,
                       match=rf'{len(NAMES) + 1} names for {len(NAMES)} '
                       r'classes \(synonyms\)'):
        model.init_weights()
