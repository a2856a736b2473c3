"""env_cfg.matmul_tf32: float32 matrix products in TF32 (as PyTorch runs
float32 convolutions) for the runs of tools/train.py, tools/test.py and
tools/benchmark.py, the previous setting restored after."""
import pytest
import torch
from mmengine.config import Config

from denseclip.engine.matmul_precision import (apply_matmul_tf32,
                                               matmul_tf32, matmul_tf32_of,
                                               matmul_tf32_setting)


@pytest.fixture
def restore_tf32():
    before = torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32 = before


def test_default_runtime_asks_for_tf32_matmuls():
    cfg = Config.fromfile('configs/denseclip_fpn_r50_ade.py')
    assert matmul_tf32_setting(cfg) is True
    # the FPN baseline shares the runtime: both rows of a benchmark alike
    assert matmul_tf32_setting(
        Config.fromfile('configs/fpn_clip_r50_ade.py')) is True


def test_apply_sets_the_switch_and_none_leaves_it(restore_tf32):
    torch.backends.cuda.matmul.allow_tf32 = False
    apply_matmul_tf32(Config(dict(env_cfg=dict(matmul_tf32=True))))
    assert torch.backends.cuda.matmul.allow_tf32 is True
    apply_matmul_tf32(Config(dict(env_cfg=dict())))
    assert torch.backends.cuda.matmul.allow_tf32 is True
    apply_matmul_tf32(Config(dict(env_cfg=dict(matmul_tf32=False))))
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_a_non_boolean_is_named(restore_tf32):
    with pytest.raises(ValueError, match=r"env_cfg.matmul_tf32 must be True "
                       r"or False, got 'yes'"):
        apply_matmul_tf32(Config(dict(env_cfg=dict(matmul_tf32='yes'))))


def test_context_restores_the_switch(restore_tf32):
    torch.backends.cuda.matmul.allow_tf32 = False
    with matmul_tf32(True):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 is False
    with matmul_tf32(None):
        assert torch.backends.cuda.matmul.allow_tf32 is False


def test_the_tools_scope_restores_the_switch(restore_tf32):
    torch.backends.cuda.matmul.allow_tf32 = False
    with matmul_tf32_of(Config(dict(env_cfg=dict(matmul_tf32=True)))):
        assert torch.backends.cuda.matmul.allow_tf32 is True
    assert torch.backends.cuda.matmul.allow_tf32 is False


def test_tools_wrap_their_runs_in_the_configs_setting():
    import inspect

    from denseclip_helpers import load_tool
    for tool, call in (('train', 'runner.train()'), ('test', 'runner.test()')):
        source = inspect.getsource(load_tool(tool).run)
        scope = source.index('with matmul_tf32_of(cfg)')
        assert scope < source.index(call), tool
