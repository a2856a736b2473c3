"""DenseCLIP segmentor: losses, gradients, inference modes, text cache, checkpoints."""
import copy

import pytest
import torch
from conftest import TOY_CLASS_NAMES, tiny_denseclip_cfg
from denseclip_helpers import make_samples
from mmengine.config import ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS


@pytest.fixture
def model(rn_clip):
    m = MODELS.build(tiny_denseclip_cfg(rn_clip.shape, rn_clip.jit))
    m.init_weights()
    return m


def test_loss_is_finite_and_has_decode_and_identity_terms(model):
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), make_samples(2, 64, 64))
    assert {'decode.loss_ce', 'aux_identity.loss_ce'} <= set(losses)
    for name, value in losses.items():
        assert torch.isfinite(value).all(), name


def test_gradients_reach_prompting_and_backbone_not_frozen_text_encoder(model):
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), make_samples(2, 64, 64))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name in ('contexts', 'gamma'):
        grad = getattr(model, name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    for part in ('context_decoder', 'backbone'):
        grads = [p.grad for p in getattr(model, part).parameters()
                 if p.requires_grad]
        assert grads and all(g is not None for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, part
    assert all(p.grad is None for p in model.text_encoder.parameters())


def test_paper_optimizer_setting_keeps_text_encoder_fixed(model):
    optim = build_optim_wrapper(
        model,
        dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
             paramwise_cfg=dict(custom_keys={
                 'backbone': dict(lr_mult=0.1),
                 'text_encoder': dict(lr_mult=0.0),
                 'norm': dict(decay_mult=0.)
             })))
    text_before = copy.deepcopy(model.text_encoder.state_dict())
    contexts_before = model.contexts.detach().clone()
    model.train()
    for _ in range(2):
        losses = model.loss(torch.randn(2, 3, 64, 64), make_samples(2, 64, 64))
        optim.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    for key, value in model.text_encoder.state_dict().items():
        assert torch.equal(value, text_before[key]), key
    assert not torch.equal(model.contexts, contexts_before)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
@pytest.mark.parametrize('size', [(50, 70), (100, 90)])
def test_inference_shapes(model, mode, size):
    h, w = size
    model.test_cfg = ConfigDict(mode=mode, crop_size=(64, 64), stride=(43, 43))
    model.eval()
    with torch.no_grad():
        logits = model.inference(torch.randn(2, 3, h, w),
                                 [s.metainfo for s in make_samples(2, h, w)])
        preds = model.predict(torch.randn(2, 3, h, w), make_samples(2, h, w))
    assert logits.shape == (2, 4, h, w)
    assert preds[0].seg_logits.data.shape == (4, h, w)
    assert preds[0].pred_sem_seg.data.shape == (1, h, w)


def test_batched_slide_equals_crop_by_crop(model):
    from mmseg.models.segmentors import EncoderDecoder
    model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64), stride=(43, 43),
                          crop_batch_size=3)
    model.eval()
    inputs = torch.randn(2, 3, 100, 90)
    metas = [s.metainfo for s in make_samples(2, 100, 90)]
    with torch.no_grad():
        batched = model.slide_inference(inputs, copy.deepcopy(metas))
        one_by_one = EncoderDecoder.slide_inference(model, inputs,
                                                    copy.deepcopy(metas))
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-5)


def test_text_features_computed_once_in_eval(model):
    calls = []
    forward = model.text_encoder.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    model.text_encoder.forward = counting
    model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64), stride=(43, 43),
                          crop_batch_size=2)
    model.eval()
    with torch.no_grad():
        for _ in range(3):
            model.predict(torch.randn(1, 3, 100, 90), make_samples(1, 100, 90))
    assert len(calls) == 1


def test_cached_and_uncached_eval_outputs_are_equal(model):
    model.eval()
    inputs = torch.randn(2, 3, 64, 64)
    metas = [s.metainfo for s in make_samples(2, 64, 64)]
    with torch.no_grad():
        first = model.inference(inputs, metas)  # fills the cache
        assert model._text_cache is not None
        cached = model.inference(inputs, metas)  # uses it
        kept = model._text_cache
        model.cache_text = False  # recompute on every forward
        uncached = model.inference(inputs, metas)
        # bypassed, not dropped: there for the next cached forward
        assert model._text_cache is kept
    torch.testing.assert_close(first, cached)
    torch.testing.assert_close(cached, uncached)


def test_cache_dropped_on_training_and_on_new_weights(model):
    model.eval()
    inputs = torch.randn(1, 3, 64, 64)
    metas = [s.metainfo for s in make_samples(1, 64, 64)]
    with torch.no_grad():
        before = model.inference(inputs, metas)
    model.train()
    assert model._text_cache is None
    model.eval()
    state = model.state_dict()
    state['contexts'] = torch.randn_like(state['contexts'])  # new contexts
    model.load_state_dict(state)
    with torch.no_grad():
        after = model.inference(inputs, metas)
        expected_text = model.text_encoder(model.texts, model.contexts)
    torch.testing.assert_close(model.text_features(), expected_text)
    assert not torch.allclose(before, after)


def test_class_names_from_dataset_name_and_count_check(rn_clip):
    cfg = tiny_denseclip_cfg(rn_clip.shape, num_classes=4)
    model = MODELS.build(cfg)
    assert model.texts.shape == (4, 5)
    with pytest.raises(ValueError, match='3 class names but num_classes=4'):
        model.set_class_names(['a', 'b', 'c'])
    cfg = tiny_denseclip_cfg(rn_clip.shape, num_classes=19,
                             class_names='cityscapes')
    cfg['decode_head']['num_classes'] = 19
    model = MODELS.build(cfg)
    assert model.class_names[:3] == ['road', 'sidewalk', 'building']
    assert model.texts.shape == (19, 5)


def test_missing_class_names_is_a_clear_error(rn_clip):
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape, class_names=None))
    model.eval()
    with pytest.raises(RuntimeError, match='no class names.*ClassNamesHook'):
        model.inference(torch.randn(1, 3, 64, 64),
                        [s.metainfo for s in make_samples(1, 64, 64)])


def test_text_head_and_backbone_context(rn_clip):
    shape = rn_clip.shape
    cfg = tiny_denseclip_cfg(shape, context_feature='backbone', text_head=True)
    cfg['context_decoder']['memory_dim'] = 256  # last stage channels
    cfg['decode_head'] = dict(
        type='IdentityHead', num_classes=4,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))
    model = MODELS.build(cfg)
    model.init_weights()
    feats, score, stages = model._forward_features(torch.randn(2, 3, 64, 64))
    assert feats[0].shape == (2, 4, shape['embed_dim'])  # text first
    assert score.shape == (2, 4, 2, 2)


def test_auxiliary_head_runs_on_raw_stage_maps(rn_clip):
    cfg = tiny_denseclip_cfg(
        rn_clip.shape,
        auxiliary_head=dict(type='FCNHead', in_channels=128, in_index=2,
                            channels=8, num_convs=1, concat_input=False,
                            num_classes=4, norm_cfg=dict(type='BN'),
                            loss_decode=dict(type='CrossEntropyLoss',
                                             loss_weight=0.4)))
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), make_samples(2, 64, 64))
    assert 'aux.loss_ce' in losses and torch.isfinite(losses['aux.loss_ce'])


def test_tta_merges_flipped_predictions(model):
    model.eval()
    tta = MODELS.build(dict(type='SegTTAModel', module=model))
    img = torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8)
    samples = []
    for flip in (False, True):
        sample = make_samples(1, 64, 80)[0]
        sample.set_metainfo(dict(flip=flip, flip_direction='horizontal',
                                 img_path='toy.jpg'))
        samples.append([sample])
    inputs = [[img], [img.flip(-1)]]
    with torch.no_grad():
        out = tta.test_step(dict(inputs=inputs, data_samples=samples))
    assert len(out) == 1 and out[0].pred_sem_seg.data.shape == (1, 64, 80)


def test_released_checkpoint_layout_loads_without_missing_keys(rn_clip,
                                                               tmp_path):
    from mmseg.models.decode_heads import FPNHead
    from mmseg.models.necks import FPN

    from denseclip.clip.checkpoint import split_clip_state_dict
    shape = rn_clip.shape
    cfg = tiny_denseclip_cfg(shape)
    visual, text = split_clip_state_dict(rn_clip.model.state_dict())
    state = {f'backbone.{k}': v for k, v in visual.items()}
    text['positional_embedding'] = text['positional_embedding'][:13]
    state.update({f'text_encoder.{k}': v for k, v in text.items()})
    # ContextDecoder keys exactly as DESIGN.md lists them (1 layer, width 16)
    w, v = 16, shape['embed_dim']
    decoder = {'memory_proj.0.weight': (v, ), 'memory_proj.0.bias': (v, ),
               'memory_proj.1.weight': (w, v), 'memory_proj.1.bias': (w, ),
               'memory_proj.2.weight': (w, ), 'memory_proj.2.bias': (w, ),
               'text_proj.0.weight': (v, ), 'text_proj.0.bias': (v, ),
               'text_proj.1.weight': (w, v), 'text_proj.1.bias': (w, ),
               'out_proj.0.weight': (w, ), 'out_proj.0.bias': (w, ),
               'out_proj.1.weight': (v, w), 'out_proj.1.bias': (v, )}
    for attn in ('self_attn', 'cross_attn'):
        for proj in ('q_proj', 'k_proj', 'v_proj'):
            decoder[f'decoder.0.{attn}.{proj}.weight'] = (w, w)
        decoder[f'decoder.0.{attn}.proj.weight'] = (w, w)
        decoder[f'decoder.0.{attn}.proj.bias'] = (w, )
    for i in (1, 2, 3):
        decoder[f'decoder.0.norm{i}.weight'] = (w, )
        decoder[f'decoder.0.norm{i}.bias'] = (w, )
    decoder.update({'decoder.0.mlp.0.weight': (4 * w, w),
                    'decoder.0.mlp.0.bias': (4 * w, ),
                    'decoder.0.mlp.3.weight': (w, 4 * w),
                    'decoder.0.mlp.3.bias': (w, )})
    state.update({f'context_decoder.{k}': torch.randn(s)
                  for k, s in decoder.items()})
    neck_cfg = {k: v for k, v in cfg['neck'].items() if k != 'type'}
    head_cfg = {k: v for k, v in cfg['decode_head'].items() if k != 'type'}
    state.update({f'neck.{k}': v for k, v in FPN(**neck_cfg).state_dict().items()})
    state.update({f'decode_head.{k}': v
                  for k, v in FPNHead(**head_cfg).state_dict().items()})
    state['contexts'] = torch.randn(1, 8, shape['transformer_width'])
    state['gamma'] = torch.full((shape['embed_dim'], ), 1e-4)
    path = str(tmp_path / 'denseclip_released.pth')
    torch.save({'meta': dict(mmseg_version='0.20.2', iter=80000,
                             CLASSES=tuple(TOY_CLASS_NAMES)),
                'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': []}}, path)

    model = MODELS.build(cfg)
    load_checkpoint(model, path, strict=True)  # raises on any key mismatch
    assert set(model.state_dict()) == set(state)
    torch.testing.assert_close(model.contexts, state['contexts'])


def test_long_class_names_error_unless_truncated(rn_clip):
    names = ['sky', 'tree', 'road', 'chest of drawers and more']
    with pytest.raises(ValueError, match="'chest of drawers and more' needs"):
        MODELS.build(tiny_denseclip_cfg(rn_clip.shape, class_names=names))
    model = MODELS.build(tiny_denseclip_cfg(
        rn_clip.shape, class_names=names, truncate_class_names=True))
    assert model.texts.shape == (4, 5) and model.texts[3, -1] == 49407
