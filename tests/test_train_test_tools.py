"""Stock and project tools on the toy config: mmseg's own train.py (a fresh
interpreter: it must register denseclip from the config alone), tools/test.py
(in this process) with a released-layout (mmseg 0.x) checkpoint, and --tta."""
import os.path as osp

import pytest
import torch
from denseclip_helpers import (TOY_CONFIG, load_tool, mmseg0x_checkpoint,
                               newest_metrics, released_state_dict, run_script)
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

import mmseg
from denseclip.clip.checkpoint import load_clip_checkpoint
from denseclip.toy.run_options import path_options, schedule_options

MMSEG_TRAIN = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                       'train.py')


@pytest.fixture(scope='module')
def toy(shared_toy_files):
    """Toy CLIP + toy ADE20K-layout data, and the --cfg-options for them."""
    return shared_toy_files, path_options(shared_toy_files)


@pytest.fixture(scope='module')
def tools_test():
    return load_tool('test')


@pytest.mark.slow
@pytest.mark.integration
def test_mmseg_stock_train_script_runs_the_toy_config(toy, tmp_path):
    """What `mim train mmsegmentation CONFIG` runs: it never imports
    denseclip itself, so the config's custom_imports must register it."""
    files, options = toy
    source = open(MMSEG_TRAIN).read()
    assert 'denseclip' not in source
    work_dir = str(tmp_path / 'work')
    # a generous hang guard: 2 iterations and 40 validation images take
    # minutes on a busy 2-core machine
    proc = run_script([MMSEG_TRAIN, TOY_CONFIG, '--work-dir', work_dir,
                       '--cfg-options'] + options + schedule_options(2),
                      timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert 'Iter(train) [2/2]' in proc.stdout
    assert 'DenseCLIP: 5 class names from the dataset metainfo' in proc.stdout
    assert f'loaded 123 tensors from {files.clip_file}' in proc.stdout
    assert 'mIoU' in proc.stdout  # validation at the end


@pytest.mark.slow
def test_released_checkpoint_through_tools_test(toy, tools_test, tmp_path,
                                                capsys):
    """A reference-layout mmseg 0.x checkpoint tests with no missing or
    unexpected keys, and the test reports a metric."""
    files, options = toy
    cfg = Config.fromfile(TOY_CONFIG)
    state = released_state_dict(cfg.model,
                                load_clip_checkpoint(files.clip_file))
    ckpt = mmseg0x_checkpoint(state, cfg.metainfo.classes,
                              cfg.metainfo.palette,
                              str(tmp_path / 'denseclip_toy_released.pth'))
    # the key set is exactly our model's (strict load raises otherwise)
    model_cfg = cfg.model.copy()
    model_cfg.update(pretrained=None, class_names=list(cfg.metainfo.classes))
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    load_checkpoint(model, ckpt, strict=True)
    torch.testing.assert_close(model.contexts, state['contexts'])

    work_dir = str(tmp_path / 'test')
    capsys.readouterr()
    tools_test.main([TOY_CONFIG, ckpt, '--work-dir', work_dir,
                    '--cfg-options'] + options)
    out = capsys.readouterr().out
    assert f'Load checkpoint from {ckpt}' in out
    for complaint in ('do not match exactly', 'unexpected key',
                      'missing keys'):
        assert complaint not in out
    metrics = newest_metrics(work_dir)
    assert metrics is not None and 0 <= metrics['mIoU'] <= 100
    assert 'Iter(test) [40/40]' in out


@pytest.mark.slow
def test_released_checkpoint_with_a_foreign_key_is_reported(
        toy, tools_test, tmp_path, capsys):
    """The check above can fail: an extra key shows in tools/test.py's log."""
    files, options = toy
    cfg = Config.fromfile(TOY_CONFIG)
    state = released_state_dict(cfg.model,
                                load_clip_checkpoint(files.clip_file))
    state['decode_head.conv_extra.weight'] = torch.zeros(1)
    ckpt = mmseg0x_checkpoint(state, cfg.metainfo.classes,
                              cfg.metainfo.palette, str(tmp_path / 'bad.pth'))
    capsys.readouterr()
    tools_test.main([TOY_CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'),
                    '--cfg-options'] + options +
                   ['test_dataloader.dataset.indices=2'])
    assert 'unexpected key in source state_dict: decode_head.conv_extra' \
        in capsys.readouterr().out


@pytest.mark.slow
def test_tools_test_tta_on_toy_config(toy, tools_test, tmp_path, capsys):
    """--tta: 6 scales x flip through SegTTAModel, a metric comes out."""
    files, options = toy
    cfg = Config.fromfile(TOY_CONFIG)
    state = released_state_dict(cfg.model,
                                load_clip_checkpoint(files.clip_file))
    ckpt = mmseg0x_checkpoint(state, cfg.metainfo.classes,
                              cfg.metainfo.palette, str(tmp_path / 'c.pth'))
    work_dir = str(tmp_path / 'tta')
    capsys.readouterr()
    tools_test.main([TOY_CONFIG, ckpt, '--tta', '--work-dir', work_dir,
                    '--cfg-options'] + options +
                   ['test_dataloader.dataset.indices=4'])
    assert 'SegTTAModel' in open(osp.join(work_dir, 'denseclip_toy.py')).read()
    metrics = newest_metrics(work_dir)
    assert metrics is not None and 'mIoU' in metrics
    assert 'Iter(test) [4/4]' in capsys.readouterr().out
