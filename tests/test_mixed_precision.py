"""--amp: MixedPrecisionOptimWrapper picks the dtype per device, DenseCLIP keeps
its precision-critical parts in float32, and the toy run learns under it."""
import glob
import json
import math
import os.path as osp

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import TOY_CONFIG, make_samples, run_script
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

from denseclip.engine.mixed_precision_optim_wrapper import (amp_dtype,
                                                            enable_amp)
from denseclip.toy.run_options import path_options, schedule_options


def test_dtype_per_device():
    cpu = torch.device('cpu')
    assert amp_dtype('auto', cpu) == torch.bfloat16
    assert amp_dtype('float16', cpu) == torch.float16
    assert amp_dtype(torch.bfloat16, cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="'auto', 'bfloat16' or 'float16'"):
        amp_dtype('float32', cpu)


def test_enable_amp_edits_the_config():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper',
                                         optimizer=dict(type='AdamW'))))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'auto'
    enable_amp(cfg)  # already on: left as it is
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
    cfg.optim_wrapper.type = 'ApexOptimWrapper'
    with pytest.raises(ValueError, match='needs optim_wrapper.type '
                       'OptimWrapper, got ApexOptimWrapper'):
        enable_amp(cfg)


def build(rn_clip, dtype):
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape, rn_clip.jit))
    model.init_weights()
    optim = build_optim_wrapper(model, ConfigDict(
        type='MixedPrecisionOptimWrapper', dtype=dtype,
        optimizer=dict(type='AdamW', lr=1e-3)))
    return model.train(), optim


def test_bfloat16_keeps_text_score_map_and_losses_in_float32(rn_clip):
    model, optim = build(rn_clip, 'auto')
    assert optim.cast_dtype == torch.bfloat16 and optim.loss_scaler is None
    seen = {}
    model.text_encoder.register_forward_hook(
        lambda m, i, o: seen.update(text=o.dtype))
    model.context_decoder.register_forward_hook(
        lambda m, i, o: seen.update(decoder=o.dtype))
    model.backbone.register_forward_hook(
        lambda m, i, o: seen.update(backbone=o[0].dtype))
    inputs = torch.randn(2, 3, 64, 64)
    samples = make_samples(2, 64, 64, num_classes=4)
    with optim.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        feats, score_map, _ = model._forward_features(inputs)
        losses = model.loss(inputs, samples)
    # autocast runs: the backbone and context decoder in bfloat16 ...
    assert seen['backbone'] == seen['decoder'] == torch.bfloat16
    # ... the text encoder, the score map and the losses in float32
    assert seen['text'] == torch.float32
    assert score_map.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in losses.values())
    # gamma (1e-4) times the decoder output survives: in bfloat16 it would
    # round away against text features of magnitude ~1
    with optim.optim_context(model):
        text = model.text_features()
        visual = torch.randn(2, 5, text.shape[-1])
        prompted = model._prompted_text(visual, text)
    assert prompted.dtype == torch.float32
    assert (prompted - text).abs().max() > 0
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    before = model.contexts.detach().clone()
    optim.update_params(loss)
    assert not torch.equal(model.contexts, before)


def test_float16_uses_a_loss_scaler_that_is_saved(rn_clip):
    model, optim = build(rn_clip, 'float16')
    assert optim.cast_dtype == torch.float16
    assert optim.loss_scaler is not None
    with optim.optim_context(model):
        losses = model.loss(torch.randn(2, 3, 64, 64),
                            make_samples(2, 64, 64, num_classes=4))
    optim.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    state = optim.state_dict()
    assert 'loss_scaler' in state and state['loss_scaler']['scale'] > 0
    _, other = build(rn_clip, 'float16')
    other.load_state_dict(state)
    assert other.loss_scaler.get_scale() == optim.loss_scaler.get_scale()


@pytest.mark.slow
@pytest.mark.integration
def test_amp_toy_run_learns(shared_toy_files, tmp_path):
    """tools/train.py --amp on the toy config (bfloat16 autocast on the CPU),
    40 iterations of 4 images: the training loss falls by a third. (The
    full 600-iteration demo reaches the fp32 run's mIoU band:
    docs/performance.md.) In a fresh interpreter: mmengine keeps one
    visualizer per process, so in this one the losses (scalars.json) would
    land in the work dir of the first run that made it."""
    iters = 40
    work_dir = str(tmp_path / 'train')
    proc = run_script(
        ['tools/train.py', TOY_CONFIG, '--amp', '--work-dir', work_dir,
         '--cfg-options', *path_options(shared_toy_files),
         *schedule_options(iters, validate=False),
         'default_hooks.logger.interval=10',
         'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False'], timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # the config as the run used it, in its log file (the console leaves
    # mmengine's config dump out)
    log_files = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(log_files) == 1, log_files
    with open(log_files[0]) as f:
        assert "type='MixedPrecisionOptimWrapper'" in f.read()
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1, scalars
    with open(scalars[0]) as f:
        losses = [json.loads(line)['loss'] for line in f]
    assert len(losses) == iters // 10
    assert all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-2:]) / 2 < 0.8 * losses[0], losses
