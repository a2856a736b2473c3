"""MergedGroupsOptimWrapperConstructor: few param groups, every parameter's
settings exactly as mmengine's default constructor gives them."""
import copy
import glob
import os.path as osp

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import CONFIG_DIR, make_samples
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

from denseclip.engine.merged_groups_optim_constructor import \
    merge_param_groups

NAME = 'MergedGroupsOptimWrapperConstructor'
R50 = osp.join(CONFIG_DIR, 'denseclip_fpn_r50_ade.py')
IMAGENET = osp.join(CONFIG_DIR, 'denseclip_fpn_imagenet-r50_ade.py')


def settings(optim_wrapper, model):
    """{parameter name: its group's settings without params}; frozen
    parameters (not in the optimizer) are absent."""
    by_id = {id(p): {k: v for k, v in g.items() if k != 'params'}
             for g in optim_wrapper.optimizer.param_groups
             for p in g['params']}
    return {name: by_id[id(p)] for name, p in model.named_parameters()
            if id(p) in by_id}


def default_cfg(optim_cfg):
    """The same optim_wrapper with mmengine's default constructor."""
    cfg = copy.deepcopy(optim_cfg)
    cfg.pop('constructor')
    return cfg


def tiny_model(rn_clip, **kwargs):
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape, **kwargs))
    model.init_weights()
    return model


@pytest.mark.parametrize('config', [R50, IMAGENET], ids=osp.basename)
def test_each_parameter_keeps_lr_weight_decay_and_frozen_state(
        rn_clip, config):
    optim_cfg = Config.fromfile(config).optim_wrapper
    assert optim_cfg.constructor == NAME
    model = tiny_model(rn_clip)
    if config == IMAGENET:  # a parameter that matches its extra custom key
        model.backbone.register_parameter(
            'proj', torch.nn.Parameter(torch.zeros(3)))
    ref = build_optim_wrapper(model, default_cfg(optim_cfg))
    ours = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    ref_settings, our_settings = settings(ref, model), settings(ours, model)
    # fused is the implementation, not a parameter's setting
    for group in our_settings.values():
        assert group.pop('fused') is True
    for group in ref_settings.values():
        group.pop('fused')
    assert our_settings == ref_settings
    # frozen: the text encoder, out of the optimizer in both
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith('text_encoder.') for n in frozen)
    assert not frozen & set(our_settings)
    assert set(our_settings) == {n for n, p in model.named_parameters()
                                 if p.requires_grad}
    # one group per distinct setting: backbone x0.1, norms without decay,
    # the rest (and, with the extra key, backbone.proj at x1.0)
    distinct = {tuple(sorted(s.items())) for s in ref_settings.values()}
    assert len(ours.optimizer.param_groups) == len(distinct) <= 4
    assert len(ref.optimizer.param_groups) == len(ref_settings) > 50
    base_lr = optim_cfg.optimizer.lr
    assert our_settings['backbone.conv1.weight']['lr'] == pytest.approx(
        0.1 * base_lr)
    assert our_settings['contexts']['lr'] == base_lr
    norm = next(n for n in our_settings if '.norm' in n)
    assert our_settings[norm]['weight_decay'] == 0.


def test_a_step_moves_every_parameter_as_the_default_constructor_does(
        rn_clip):
    """Same implementation (foreach) both ways: after two steps every
    parameter is where mmengine's per-parameter groups put it."""
    optim_cfg = Config.fromfile(R50).optim_wrapper
    optim_cfg.optimizer.foreach = True
    optim_cfg.optimizer.lr = 1e-2
    models = [tiny_model(rn_clip) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    wrappers = [build_optim_wrapper(models[0], default_cfg(optim_cfg)),
                build_optim_wrapper(models[1], copy.deepcopy(optim_cfg))]
    assert 'fused' not in wrappers[1].optimizer.param_groups[0] or \
        not wrappers[1].optimizer.param_groups[0]['fused']
    for step in range(2):
        samples = make_samples(2, 64, 64, num_classes=4, seed=step)
        inputs = torch.randn(2, 3, 64, 64,
                             generator=torch.Generator().manual_seed(step))
        for model, wrapper in zip(models, wrappers):
            model.train()
            torch.manual_seed(step)  # same dropout masks
            losses = model.loss(inputs, samples)
            wrapper.update_params(
                sum(v for k, v in losses.items() if 'loss' in k))
    after = [dict(m.named_parameters()) for m in models]
    for name, value in after[0].items():
        torch.testing.assert_close(after[1][name], value, rtol=1e-5,
                                   atol=1e-7, msg=name)


def test_merge_keeps_order_and_settings():
    a, b, c, d = (torch.nn.Parameter(torch.zeros(1)) for _ in range(4))
    groups = [dict(params=[a], lr=1.0, betas=[0.9, 0.99]),
              dict(params=[b], lr=0.1),
              dict(params=[c], lr=1.0, betas=[0.9, 0.99]),
              dict(params=[d])]
    merged = merge_param_groups(groups)
    assert [g['params'] for g in merged] == [[a, c], [b], [d]]
    assert merged[0]['betas'] == [0.9, 0.99] and merged[1]['lr'] == 0.1
    assert 'lr' not in merged[2]


def test_explicit_implementation_is_kept(rn_clip):
    optim_cfg = Config.fromfile(R50).optim_wrapper
    optim_cfg.optimizer.foreach = False
    wrapper = build_optim_wrapper(tiny_model(rn_clip), optim_cfg)
    group = wrapper.optimizer.param_groups[0]
    assert group['foreach'] is False and not group.get('fused')


def test_every_config_with_paramwise_cfg_uses_the_constructor():
    configs = [p for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'),
                                    recursive=True)
               if '_base_' not in p]
    with_paramwise = []
    for path in configs:
        cfg = Config.fromfile(path)
        wrapper = cfg.get('optim_wrapper', {})
        if wrapper.get('paramwise_cfg'):
            with_paramwise.append(path)
            assert wrapper.get('constructor') == NAME, path
    assert R50 in with_paramwise and IMAGENET in with_paramwise
