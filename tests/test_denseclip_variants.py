"""DenseCLIP's other variants: pre-model prompting and any backbone."""
import copy

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import make_samples
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS


def train_steps(model, steps=3):
    """A few AdamW steps in the paper's optimizer setting; returns last losses."""
    optim = build_optim_wrapper(
        model,
        dict(type='OptimWrapper',
             optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
             paramwise_cfg=dict(custom_keys={
                 'backbone': dict(lr_mult=0.1),
                 'text_encoder': dict(lr_mult=0.0)
             })))
    model.train()
    for step in range(steps):
        losses = model.loss(torch.randn(2, 3, 64, 64),
                            make_samples(2, 64, 64, seed=step))
        for name, value in losses.items():
            assert torch.isfinite(value).all(), name
        optim.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    return losses


def pre_cfg(shape, pretrained):
    cfg = tiny_denseclip_cfg(shape, pretrained, prompting='pre')
    # queries and output in the text tower's token width, memory = [g; z]
    cfg.context_decoder.update(visual_dim=shape['transformer_width'],
                               memory_dim=shape['embed_dim'])
    return cfg


def test_pre_model_prompting_trains_and_reaches_its_parameters(rn_clip):
    model = MODELS.build(pre_cfg(rn_clip.shape, rn_clip.jit))
    model.init_weights()
    assert 'gamma' not in model.state_dict()
    before = copy.deepcopy(model.state_dict())
    losses = train_steps(model)
    assert {'decode.loss_ce', 'aux_identity.loss_ce'} <= set(losses)
    after = model.state_dict()
    assert not torch.equal(after['contexts'], before['contexts'])
    changed = [k for k in before if k.startswith('context_decoder.')
               and not torch.equal(after[k], before[k])]
    assert len(changed) > 10
    for k in before:
        if k.startswith('text_encoder.'):
            assert torch.equal(after[k], before[k]), k


def test_pre_model_prompting_encodes_text_per_image(rn_clip):
    model = MODELS.build(pre_cfg(rn_clip.shape, rn_clip.jit))
    model.init_weights()
    model.eval()
    calls = []
    forward = model.text_encoder.forward
    model.text_encoder.forward = lambda *a: calls.append(a[1].shape) or forward(*a)
    with torch.no_grad():
        for _ in range(2):
            out = model.inference(torch.randn(2, 3, 64, 64),
                                  [s.metainfo for s in make_samples(2, 64, 64)])
    assert out.shape == (2, 4, 64, 64)
    # one call per forward, with one decoded context per image
    assert calls == [(2, 8, rn_clip.shape['transformer_width'])] * 2


def any_backbone_cfg(shape, text_pretrained):
    cfg = tiny_denseclip_cfg(shape)
    cfg.text_encoder.pretrained = text_pretrained
    cfg.backbone = dict(
        type='BackboneWithEmbeddings',
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, norm_cfg=dict(type='BN')),
        in_channels=64,
        embed_dim=shape['embed_dim'])
    cfg.neck.in_channels = [8, 16, 32, 64 + 4]
    return cfg


def test_any_backbone_trains_with_frozen_clip_text_encoder(rn_clip):
    model = MODELS.build(any_backbone_cfg(rn_clip.shape, rn_clip.jit))
    model.init_weights()
    assert model.text_encoder.load_report.missing == []
    before = copy.deepcopy(model.state_dict())
    train_steps(model)
    after = model.state_dict()
    for key in ('backbone.proj.weight', 'backbone.backbone.stem.0.weight',
                'contexts', 'gamma'):
        assert not torch.equal(after[key], before[key]), key
    for k in before:
        if k.startswith('text_encoder.'):
            assert torch.equal(after[k], before[k]), k


def test_backbone_with_embeddings_outputs():
    backbone = MODELS.build(
        dict(type='BackboneWithEmbeddings',
             backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                           base_channels=8, norm_cfg=dict(type='BN')),
             in_channels=64, embed_dim=12)).eval()
    with torch.no_grad():
        outs = backbone(torch.randn(2, 3, 64, 96))
    assert [o.shape[1] for o in outs[:4]] == [8, 16, 32, 64]
    global_feat, dense = outs[4]
    assert global_feat.shape == (2, 12) and dense.shape == (2, 12, 2, 3)
    # one projection: the global feature is the projection of the mean
    torch.testing.assert_close(global_feat, dense.mean(dim=(2, 3)),
                               atol=1e-5, rtol=1e-5)


def test_unknown_prompting_is_an_error(rn_clip):
    with pytest.raises(ValueError, match="prompting must be 'post' or 'pre'"):
        MODELS.build(tiny_denseclip_cfg(rn_clip.shape, prompting='both'))
