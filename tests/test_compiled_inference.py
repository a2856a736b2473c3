"""Compiled / autocast / channels-last inference: same predictions as eager."""
import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import load_tool, make_samples
from mmseg.registry import MODELS

from denseclip.engine.compiled_inference import (compile_for_inference,
                                                 segmentor_of)


def eval_model(rn_clip, **test_cfg):
    cfg = tiny_denseclip_cfg(rn_clip.shape, rn_clip.jit)
    cfg.test_cfg = test_cfg or dict(mode='whole')
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


@pytest.mark.slow
def test_torch_compile_default_mode_equal_predictions(rn_clip):
    """torch.compile (inductor, default mode) on the CPU: slide inference
    over 2 crops per image, the cached text features passed in."""
    model = eval_model(rn_clip, mode='slide', crop_size=(64, 64),
                       stride=(43, 43), crop_batch_size=4)
    inputs = torch.randn(2, 3, 64, 100)
    metas = [s.metainfo for s in make_samples(2, 64, 100, num_classes=4)]
    with torch.no_grad():
        eager = model.inference(inputs, metas)
        compile_for_inference(model, mode='default')
        compiled = model.inference(inputs, metas)
        again = model.inference(inputs, metas)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, compiled)
    assert torch.equal(compiled.argmax(1), eager.argmax(1))


def test_channels_last_and_autocast_without_compiling(rn_clip):
    model = eval_model(rn_clip)
    inputs = torch.randn(2, 3, 64, 64)
    metas = [s.metainfo for s in make_samples(2, 64, 64, num_classes=4)]
    with torch.no_grad():
        eager = model.inference(inputs, metas)
        compile_for_inference(model, mode=None, channels_last=True)
        assert model.backbone.conv1.weight.is_contiguous(
            memory_format=torch.channels_last)
        channels_last = model.inference(inputs, metas)
        compile_for_inference(model, mode=None, amp=True)
        autocast = model.inference(inputs, metas)
    torch.testing.assert_close(channels_last, eager, rtol=1e-4, atol=1e-5)
    # bfloat16 autocast: float32 logits, close to float32 ones
    assert autocast.dtype == torch.float32
    scale = float(eager.abs().max())
    assert float((autocast - eager).abs().max()) < 0.05 * scale


def test_wrappers_are_unwrapped_and_bad_input_is_named(rn_clip):
    tta = MODELS.build(dict(type='SegTTAModel',
                            module=tiny_denseclip_cfg(rn_clip.shape)))
    assert segmentor_of(tta) is tta.module
    model = tta.module
    with pytest.raises(ValueError, match='mode must be one of'):
        compile_for_inference(model, mode='fastest')
    with pytest.raises(TypeError, match='Linear is no mmseg EncoderDecoder'):
        compile_for_inference(torch.nn.Linear(2, 2))


def test_test_tool_options():
    tool = load_tool('test')
    args = tool.parse_args(['cfg.py', '--compile'])
    assert args.compile == 'default' and not args.amp
    args = tool.parse_args(['cfg.py', '--compile', 'reduce-overhead', '--amp'])
    assert args.compile == 'reduce-overhead' and args.amp
    assert tool.parse_args(['cfg.py']).compile is None
    with pytest.raises(SystemExit):
        tool.parse_args(['cfg.py', '--compile', 'fastest'])
