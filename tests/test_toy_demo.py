"""tools/toy_demo.py: toy files written once and reused; the fast run end to end."""
import dataclasses
import json
import os
import os.path as osp
import re

import pytest
from denseclip_helpers import load_tool

from denseclip.toy import files as toy_files
from denseclip.toy.run_options import schedule_options


@pytest.fixture(scope='module')
def demo():
    return load_tool('toy_demo')


def test_toy_files_are_written_once_and_reused(demo, tmp_path):
    work_dir = str(tmp_path / 'toy')
    first = toy_files.prepare_toy_files(work_dir)
    assert first.reused is False
    clip_mtime = os.stat(first.clip_file).st_mtime_ns
    val_dir = osp.join(first.data_root, 'images', 'validation')
    images = sorted(os.listdir(val_dir))
    assert len(images) == toy_files.DATA['num_val']
    assert images[0] == 'ADE_val_00000001.jpg'  # ADE20K's own naming
    again = toy_files.prepare_toy_files(work_dir)
    assert again == dataclasses.replace(first, reused=True)
    assert os.stat(first.clip_file).st_mtime_ns == clip_mtime

    # other settings in the manifest: everything written anew, stale files
    # of the old dataset gone
    stale = osp.join(val_dir, 'ADE_val_99999999.jpg')
    open(stale, 'w').close()
    manifest = osp.join(work_dir, 'toy_files.json')
    with open(manifest) as f:
        recorded = json.load(f)
    recorded['data']['num_val'] = 3
    with open(manifest, 'w') as f:
        json.dump(recorded, f)
    assert toy_files.prepare_toy_files(work_dir).reused is False
    assert not osp.exists(stale)
    assert len(os.listdir(val_dir)) == toy_files.DATA['num_val']
    # a lost file: written anew
    os.remove(first.clip_file)
    assert toy_files.prepare_toy_files(work_dir).reused is False
    assert osp.isfile(first.clip_file)


def test_a_dataset_folder_not_written_by_the_demo_is_left_alone(demo,
                                                                tmp_path):
    data_root = tmp_path / 'toy' / 'ade' / 'ADEChallengeData2016'
    (data_root / 'images').mkdir(parents=True)
    mine = data_root / 'images' / 'ADE_train_00000001.jpg'
    mine.write_bytes(b'user data')
    with pytest.raises(SystemExit, match='not written by the toy demo'):
        toy_files.prepare_toy_files(str(tmp_path / 'toy'))
    assert mine.read_bytes() == b'user data'


def test_schedule_options_keep_warmup_inside_the_run(demo):
    opts = dict(o.split('=') for o in schedule_options(4))
    assert opts['train_cfg.max_iters'] == '4'
    assert int(opts['param_scheduler.0.end']) < int(
        opts['param_scheduler.1.end']) == 4
    with pytest.raises(SystemExit):
        demo.parse_args(['--iters', '1'])


def _learning_rates(demo, iters):
    """The lr of each iteration of the DenseCLIP toy config's schedule
    with ``schedule_options(iters)`` applied (mmengine's schedulers)."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(demo.CONFIG)
    cfg.merge_from_dict(dict(o.split('=') for o in schedule_options(
        iters)))
    wrapper = build_optim_wrapper(
        torch.nn.Linear(2, 2), dict(type='OptimWrapper',
                                    optimizer=dict(type='SGD', lr=1.0)))
    schedulers = [
        PARAM_SCHEDULERS.build(
            dict(step, optimizer=wrapper,
                 begin=int(step['begin']), end=int(step['end'])))
        for step in cfg.param_scheduler
    ]
    rates = []
    for _ in range(iters):
        rates.append(wrapper.get_lr()['lr'][0])
        wrapper.optimizer.step()  # no gradients: changes nothing
        for scheduler in schedulers:
            scheduler.step()
    return rates


@pytest.mark.parametrize('iters', [4, 10, 19])
def test_short_runs_leave_the_warmup(demo, iters):
    """A short run warms up over half its iterations and then trains near
    the full lr, not at the warm-up's start factor (1e-3) throughout."""
    rates = _learning_rates(demo, iters)
    assert rates[0] == pytest.approx(1e-3)
    assert max(rates) >= 0.4, rates
    assert rates[-1] < max(rates)  # then the poly decay


def test_long_runs_keep_the_configs_warmup(demo):
    opts = dict(o.split('=') for o in schedule_options(600))
    assert opts['param_scheduler.0.end'] == '50'
    assert dict(o.split('=') for o in schedule_options(300))[
        'param_scheduler.0.end'] == '30'


def test_fast_demo_end_to_end(demo, tmp_path, capsys):
    """Toy CLIP + toy data, 4 training iterations through tools/train.py,
    slide test through tools/test.py: checkpoint, painted predictions and the
    mIoU line (no score bar: 4 iterations learn nothing)."""
    work_dir = str(tmp_path / 'toy')
    result = demo.main(['--fast', '--work-dir', work_dir])
    out = capsys.readouterr().out

    assert result['checkpoint'] == osp.join(work_dir, 'train', 'iter_4.pth')
    assert osp.isfile(result['checkpoint'])
    metrics = result['metrics']
    assert set(metrics) >= {'mIoU', 'aAcc', 'mAcc'}
    assert 0 <= metrics['mIoU'] <= 100
    line = next(l for l in out.splitlines() if l.strip().startswith('mIoU ('))
    assert 'slide inference' in line and f'{metrics["mIoU"]:.2f}' in line
    # every validation image painted, as PNG, where the summary says
    assert len(result['painted']) == toy_files.DATA['num_val']
    assert all(p.endswith('.png') and osp.getsize(p) > 0
               for p in result['painted'])
    assert result['show_dir'] in out
    assert 'Iter(train) [4/4]' in out and 'Iter(test) [40/40]' in out
    # the test ran slide inference from the config
    dumped = open(osp.join(work_dir, 'test', 'denseclip_toy.py')).read()
    assert "mode='slide'" in dumped


def test_trained_toy_clip_is_trained_once_and_reused(demo, tmp_path,
                                                    capsys):
    work_dir = str(tmp_path / 'toy')
    first = toy_files.prepare_trained_clip(work_dir, 'ViT', fast=True)
    assert first.reused is False
    assert first.clip_file == osp.join(work_dir, 'clip',
                                       'toy_ViT_trained.pt')
    assert 0 <= first.retrieval <= 1
    out = capsys.readouterr().out
    assert f'step {toy_files.FAST_CLIP_STEPS}/{toy_files.FAST_CLIP_STEPS}' in out
    mtime = os.stat(first.clip_file).st_mtime_ns
    again = toy_files.prepare_trained_clip(work_dir, 'ViT', fast=True)
    assert again == dataclasses.replace(first, reused=True)
    assert os.stat(first.clip_file).st_mtime_ns == mtime
    assert capsys.readouterr().out == ''  # no training the second time
    # another recipe (here: the full one) is trained anew; so is an older
    # version of the training code
    manifest = osp.splitext(first.clip_file)[0] + '.json'
    with open(manifest) as f:
        recorded = json.load(f)
    assert recorded['recipe']['steps'] == toy_files.FAST_CLIP_STEPS
    recorded['version'] -= 1
    with open(manifest, 'w') as f:
        json.dump(recorded, f)
    assert toy_files.prepare_trained_clip(work_dir, 'ViT',
                                     fast=True).reused is False
    with pytest.raises(SystemExit, match="toy_clip='ResNet'.*'RN', 'ViT'"):
        toy_files.prepare_trained_clip(work_dir, 'ResNet')


def test_another_data_seed_writes_another_dataset(demo, tmp_path):
    work_dir = str(tmp_path / 'toy')
    first = toy_files.prepare_toy_files(work_dir)
    image = osp.join(first.data_root, 'images', 'validation',
                     'ADE_val_00000001.jpg')
    before = open(image, 'rb').read()
    other = toy_files.prepare_toy_files(work_dir, data_seed=1)
    assert other.reused is False and other.data_root == first.data_root
    assert open(image, 'rb').read() != before
    assert toy_files.prepare_toy_files(work_dir, data_seed=1).reused is True


def test_fast_maskclip_demo_tests_without_training(demo, tmp_path, capsys):
    """MaskCLIP has nothing to train: the demo tests the config through
    tools/test.py without a checkpoint, on the trained toy CLIP."""
    work_dir = str(tmp_path / 'toy')
    config = osp.join(demo.REPO, 'configs', 'toy', 'maskclip_toy.py')
    result = demo.main(['--fast', '--work-dir', work_dir, '--config', config])
    out = capsys.readouterr().out
    assert result['checkpoint'] is None
    assert not osp.exists(osp.join(work_dir, 'train'))
    assert result['clip_file'] == osp.join(work_dir, 'clip',
                                           'toy_RN_trained.pt')
    assert {'mIoU', 'aAcc', 'mAcc'} <= set(result['metrics'])
    assert 'MaskClipHead toy demo (no training: annotation-free)' in out
    assert '[2/2] testing with the frozen CLIP weights' in out
    assert 'tools/train.py' not in out
    assert re.search(r'loaded \d+ tensors from .*toy_RN_trained\.pt into '
                     r'CLIPResNet', out)
    assert len(result['painted']) == toy_files.DATA['num_val']
    line = next(l for l in out.splitlines() if l.strip().startswith('mIoU ('))
    assert 'seed 0' in line and f'{result["metrics"]["mIoU"]:.2f}' in line


def test_fast_maskclip_plus_demo_end_to_end(demo, tmp_path, capsys):
    """The same toy files train MaskCLIP+ (teacher: MaskCLIP on the trained
    toy CLIP) for 4 iterations and test it: the whole annotation-free path
    on a CPU."""
    work_dir = str(tmp_path / 'toy')
    config = osp.join(demo.REPO, 'configs', 'toy', 'maskclip_plus_toy.py')
    result = demo.main(['--fast', '--work-dir', work_dir, '--config', config])
    out = capsys.readouterr().out
    assert osp.isfile(result['checkpoint'])
    assert {'mIoU', 'aAcc', 'mAcc'} <= set(result['metrics'])
    assert 'MaskClipPlus toy demo' in out and 'whole inference' in out
    # the teacher's image tower read the toy CLIP file the demo pointed it at
    assert re.search(r'loaded \d+ tensors from .*toy_RN_trained\.pt into '
                     r'CLIPResNet', out)
    dumped = open(osp.join(work_dir, 'train', 'maskclip_plus_toy.py')).read()
    assert osp.join(work_dir, 'clip', 'toy_RN_trained.pt') in dumped
