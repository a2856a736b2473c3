"""The separable loss path: a resize equal to F.interpolate, mmseg's losses and
accuracy unchanged on fixed batches, no host syncs, no scattering resize."""
import copy
import types

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_denseclip_cfg
from denseclip_helpers import make_samples
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from torch.utils._python_dispatch import TorchDispatchMode

from denseclip.models.losses import (SeparableLossHeadMixin, bilinear_weights,
                                     decode_head_loss_by_feat,
                                     separable_resize, top1_accuracy)

# (input h, w) -> (output H, W): DenseCLIP's 16 -> 512, odd sizes both ways,
# downsizing, one side equal, 1-pixel sides
SIZES = [((16, 16), (512, 512)), ((7, 5), (33, 19)), ((33, 19), (7, 5)),
         ((8, 8), (8, 13)), ((1, 3), (5, 1)), ((5, 5), (1, 1))]


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('sizes', SIZES, ids=str)
def test_resize_equals_interpolate_values_and_gradients(sizes, align_corners):
    (h, w), (H, W) = sizes
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, h, w, generator=gen, requires_grad=True)
    grad_out = torch.randn(2, 3, H, W, generator=gen)
    ref = F.interpolate(x, (H, W), mode='bilinear',
                        align_corners=align_corners)
    out = separable_resize(x, (H, W), align_corners)
    assert out.shape == ref.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-6)
    grad_ref, = torch.autograd.grad(ref, x, grad_out)
    grad, = torch.autograd.grad(out, x, grad_out)
    # 16 -> 512 sums ~1024 gradients per input pixel
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5,
                               atol=1e-5 * float(grad_ref.abs().max()))


@pytest.mark.parametrize('align_corners', [False, True])
def test_resize_in_bfloat16_is_the_float32_resize_rounded_once(align_corners):
    """bfloat16 in, bfloat16 out: interpolated in float32 and rounded once,
    so within one unit roundoff (2^-8, relative) of the float32 result, plus
    float32 rounding where two taps cancel."""
    x = torch.randn(2, 3, 16, 16,
                    generator=torch.Generator().manual_seed(1)).bfloat16()
    out = separable_resize(x, (512, 512), align_corners)
    assert out.dtype == torch.bfloat16
    ref = F.interpolate(x.float(), (512, 512), mode='bilinear',
                        align_corners=align_corners)
    unit = 2.0**-8  # bfloat16's unit roundoff (8 significant bits)
    assert ((out.float() - ref).abs() <= unit * ref.abs() + 1e-6).all()
    if not align_corners:  # F.interpolate's own bfloat16 kernel agrees
        mmseg = F.interpolate(x, (512, 512), mode='bilinear')
        assert ((out.float() - mmseg.float()).abs()
                <= 2 * unit * ref.abs() + 1e-6).all()


def test_bilinear_weights_are_two_tap_rows_summing_to_one():
    for (n_in, n_out), ac in [((16, 512), False), ((33, 7), True),
                              ((7, 7), False), ((1, 4), True)]:
        weights = bilinear_weights(n_in, n_out, ac)
        assert weights.shape == (n_out, n_in)
        torch.testing.assert_close(weights.sum(1), torch.ones(n_out))
        assert ((weights != 0).sum(1) <= 2).all()
    with pytest.raises(ValueError, match='sizes must be >= 1'):
        bilinear_weights(0, 4, False)


@pytest.mark.parametrize('ignore_index', [None, 255])
def test_top1_accuracy_equals_mmseg_accuracy(ignore_index):
    gen = torch.Generator().manual_seed(2)
    pred = torch.randn(3, 7, 20, 30, generator=gen)
    target = torch.randint(0, 7, (3, 20, 30), generator=gen)
    target[:, :4] = 255 if ignore_index else target[:, :4]
    ours, ref = (top1_accuracy(pred, target, ignore_index),
                 accuracy(pred, target, ignore_index=ignore_index))
    assert ours.shape == ref.shape == (1, )
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)
    # right where the argmax is the label: 100 %; every pixel ignored: 100 %
    # as in mmseg (the eps terms)
    assert float(top1_accuracy(pred, pred.argmax(1), ignore_index)) == \
        pytest.approx(100.)
    all_ignored = torch.full_like(target, 255)
    torch.testing.assert_close(top1_accuracy(pred, all_ignored, 255),
                               accuracy(pred, all_ignored, ignore_index=255))
    with pytest.raises(ValueError, match='class dimension'):
        top1_accuracy(pred, target[0], ignore_index)


HEADS = {
    # DenseCLIP's FPNHead loss (mmseg's CE, mean over all pixels)
    'ce': dict(loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    # the .item() sync of avg_non_ignore
    'ce_non_ignore': dict(loss_decode=dict(
        type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=0.4)),
    # several losses (same name summed), align_corners
    'ce_dice_align_corners': dict(
        align_corners=True,
        loss_decode=[dict(type='CrossEntropyLoss', avg_non_ignore=True),
                     dict(type='DiceLoss', loss_weight=0.5),
                     dict(type='CrossEntropyLoss', loss_weight=0.3)]),
    # an OHEM sampler (mmseg's DiceLoss refuses its weights)
    'ohem_ce': dict(
        sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=50),
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True)),
}


@pytest.mark.parametrize('name', sorted(HEADS))
def test_head_losses_and_accuracy_unchanged_on_a_fixed_batch(name):
    """The same logits through mmseg's ``loss_by_feat`` and ours: same keys,
    losses, accuracy and gradient."""
    head = MODELS.build(dict(type='FCNHead', in_channels=8, channels=8,
                             num_convs=1, num_classes=4, **HEADS[name]))
    gen = torch.Generator().manual_seed(3)
    samples = make_samples(2, 61, 47, num_classes=4, seed=3)
    for sample in samples:
        sample.gt_sem_seg.data[:, :6] = 255
    logits = torch.randn(2, 4, 9, 7, generator=gen, requires_grad=True)
    ref = BaseDecodeHead.loss_by_feat(head, logits, samples)
    ours = decode_head_loss_by_feat(head, logits, samples)
    assert sorted(ours) == sorted(ref)
    for key in ref:
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-5, atol=1e-6)
    total = [sum(v for k, v in out.items() if k.startswith('loss'))
             for out in (ref, ours)]
    grads = [torch.autograd.grad(t, logits)[0] for t in total]
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-7)


def _mmseg_loss_path(model):
    """``model`` with mmseg's own loss path (F.interpolate, topk, syncs)."""
    model = copy.deepcopy(model)
    for name in ('_decode_head_forward_train',
                 '_auxiliary_head_forward_train'):
        setattr(model, name,
                types.MethodType(getattr(EncoderDecoder, name), model))
    model.identity_head.loss_by_feat = types.MethodType(
        BaseDecodeHead.loss_by_feat, model.identity_head)
    return model


def tiny_model_with_aux_head(shape):
    cfg = tiny_denseclip_cfg(shape)
    cfg.decode_head.dropout_ratio = 0.
    cfg.context_decoder.dropout = 0.
    stage3 = shape['vision_width'] * 4 * 4
    cfg.auxiliary_head = [dict(
        type='FCNHead', in_channels=stage3, in_index=2, channels=8,
        num_convs=1, num_classes=4, dropout_ratio=0.,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4,
                         avg_non_ignore=True))]
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def test_denseclip_losses_unchanged_on_a_fixed_batch(rn_clip):
    """DenseCLIP with FPNHead, identity head and an FCN auxiliary head (mmseg's
    classes, configs untouched): the losses, accuracies and the contexts'
    gradient equal mmseg's loss path."""
    model = tiny_model_with_aux_head(rn_clip.shape)
    reference = _mmseg_loss_path(model)
    inputs = torch.randn(2, 3, 64, 64,
                         generator=torch.Generator().manual_seed(4))
    samples = make_samples(2, 64, 64, num_classes=4, seed=4)
    for sample in samples:
        sample.gt_sem_seg.data[:, :5] = 255
    outs = [m.loss(inputs, samples) for m in (reference, model)]
    assert sorted(outs[1]) == sorted(outs[0]) == sorted([
        'decode.loss_ce', 'decode.acc_seg', 'aux_identity.loss_ce',
        'aux_identity.acc_seg', 'aux_0.loss_ce', 'aux_0.acc_seg'])
    for key in outs[0]:
        torch.testing.assert_close(outs[1][key], outs[0][key], rtol=1e-5,
                                   atol=1e-6)
    grads = [
        torch.autograd.grad(sum(v for k, v in out.items() if 'loss' in k),
                            m.contexts)[0]
        for m, out in zip((reference, model), outs)
    ]
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4,
                               atol=1e-5 * float(grads[0].abs().max()))


class OpLog(TorchDispatchMode):
    """Records the aten ops run (forward and backward); boolean indexing and
    bilinear resizes of class logits (``num_classes`` channels; FPNHead's
    own resizes of its features inside the network are not the loss path)
    get names of their own."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__
        if name.startswith('index.') and any(
                torch.is_tensor(i) and i.dtype == torch.bool
                for i in (args[1] if len(args) > 1 else []) if i is not None):
            name = 'boolean indexing'
        # forward: the input, backward: the output gradient, [B, C, ...]
        if (name.startswith('upsample_bilinear2d')
                and args[0].shape[1] == self.num_classes):
            name = 'logits ' + name
        self.ops.add(name)
        return func(*args, **(kwargs or {}))


# what waits for the device (.item(), boolean masks, nonzero) or scatters
SYNCS = {'_local_scalar_dense.default', 'nonzero.default',
         'masked_select.default', 'boolean indexing'}
SCATTER = {'logits upsample_bilinear2d.default',
           'logits upsample_bilinear2d_backward.default', 'topk.default'}


def test_no_host_sync_no_scattering_resize_no_topk(rn_clip):
    model = tiny_model_with_aux_head(rn_clip.shape)
    reference = _mmseg_loss_path(model)
    inputs = torch.randn(2, 3, 64, 64)
    samples = make_samples(2, 64, 64, num_classes=4)
    seen = {}
    for name, m in (('mmseg', reference), ('ours', model)):
        feats, score_map, stages = m._forward_features(inputs)
        with OpLog(num_classes=4) as log:
            losses = m._decode_head_forward_train(feats, samples)
            losses.update(m.identity_head.loss(score_map / m.tau, samples,
                                               m.train_cfg))
            losses.update(m._auxiliary_head_forward_train(stages, samples))
            sum(v for k, v in losses.items() if 'loss' in k).backward()
        seen[name] = log.ops
    # the check can fail: mmseg's path has .item() (avg_non_ignore),
    # boolean indexing (accuracy), the scattering resize and topk
    assert {'_local_scalar_dense.default', 'boolean indexing'} <= seen['mmseg']
    assert SCATTER <= seen['mmseg']
    assert not (SYNCS | SCATTER) & seen['ours'], (SYNCS | SCATTER) & seen[
        'ours']


def test_our_heads_take_the_separable_loss_path():
    for name in ('IdentityHead', 'ASPPV2Head', 'MaskClipPlusHead'):
        head = MODELS.get(name)
        assert issubclass(head, SeparableLossHeadMixin), name
        assert head.loss_by_feat is SeparableLossHeadMixin.loss_by_feat
