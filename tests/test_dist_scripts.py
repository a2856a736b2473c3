"""Two processes on a CPU-only machine: tools/dist_train.sh and dist_test.sh
with the gloo backend, from a shell where the venv is not activated."""
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from denseclip.toy.run_options import path_options

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'toy', 'denseclip_toy.py')
ITERS = 4


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def shell_env():
    """A user's shell after `make install`: the venv not activated (no
    torchrun on PATH), the checkout not installed into the system Python."""
    path = os.pathsep.join(
        p for p in os.environ.get('PATH', '').split(os.pathsep)
        if osp.dirname(sys.executable) != p and '.venv' not in p)
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHON', 'PYTHONPATH', 'VIRTUAL_ENV')}
    # the CPU (gloo) path, also on a machine with GPUs (there the scripts
    # would take mmengine's nccl path, one process per GPU)
    env.update(PATH=path, PORT=str(free_port()), PYTHONUNBUFFERED='1',
               CUDA_VISIBLE_DEVICES='')
    return env


def run(cmd, env):
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def miou(out, mode):
    found = re.findall(rf'Iter\({mode}\) \[\d+/\d+\]\s+aAcc: \S+\s+mIoU: '
                       r'(\S+)', out)
    assert found, out[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def toy_options(shared_toy_files):
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    return path_options(shared_toy_files) + [
        f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
        f'default_hooks.checkpoint.interval={ITERS}',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        f'param_scheduler.1.end={ITERS}'
    ] + [f'{loader}.num_workers=0' for loader in loaders] + [
        # 8 validation images (4 per process) keep the test short
        f'{loader}.dataset.indices=8' for loader in loaders[1:]] + [
        f'{loader}.persistent_workers=False' for loader in loaders]


@pytest.mark.slow
@pytest.mark.integration
def test_two_cpu_processes_train_and_test_the_toy(toy_options, tmp_path):
    env = shell_env()
    # the situation of the bug report: torchrun is not on PATH
    assert shutil.which('torchrun', path=env['PATH']) is None
    work_dir = str(tmp_path / 'train')
    out = run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
               work_dir, '--cfg-options', *toy_options], env)
    assert '_cuda_setDevice' not in out
    assert 'no CUDA: distributed backend gloo instead of nccl' in out
    assert re.search(r'CPU distributed run: 7 SyncBN layer\(s\) converted '
                     r'to BN', out)
    assert f'Iter(train) [{ITERS}/{ITERS}]' in out
    # each process validated half of the 8 validation images
    assert 'Iter(val) [4/4]' in out and 'Iter(val) [8/8]' not in out
    val_miou = miou(out, 'val')
    ckpt = osp.join(work_dir, f'iter_{ITERS}.pth')
    meta = torch.load(ckpt, map_location='cpu')['meta']
    assert meta['iter'] == ITERS
    # the dumped config records the CPU set-up
    dumped = open(osp.join(work_dir, 'denseclip_toy.py')).read()
    assert "type='mmseg.CPUDistributedDataParallel'" in dumped
    assert "backend='gloo'" in dumped

    out = run(['bash', 'tools/dist_test.sh', CONFIG, ckpt, '2',
               '--work-dir', str(tmp_path / 'test'), '--cfg-options',
               *toy_options], env)
    assert 'Iter(test) [4/4]' in out
    dist_miou = miou(out, 'test')
    # one process on the same checkpoint: the same score, and the same as
    # the validation at the end of training (every rank held rank 0's BN
    # statistics, the ones saved)
    out = run([sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir',
               str(tmp_path / 'test1'), '--cfg-options', *toy_options],
              dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES=''))
    assert 'Iter(test) [8/8]' in out
    assert miou(out, 'test') == dist_miou == val_miou


@pytest.mark.integration
def test_a_missing_python_is_named(tmp_path):
    env = dict(shell_env(), PYTHON=str(tmp_path / 'no_python'))
    proc = subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '2'],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'no Python with torch found' in proc.stderr
    assert str(tmp_path / 'no_python') in proc.stderr


@pytest.fixture(scope='module')
def training_free_options(shared_toy_files, tmp_path_factory):
    """configs/toy/maskclip_vit_toy.py on an untrained CLIP of its shape and
    8 toy validation images (4 per process)."""
    from denseclip.toy.clip_model import (TRAINED_VIT, build_openai_clip,
                                          write_clip_checkpoint)
    from denseclip.toy.files import ToyFiles
    clip = write_clip_checkpoint(
        build_openai_clip(seed=3, **TRAINED_VIT),
        str(tmp_path_factory.mktemp('vit_clip') / 'toy_ViT.pt'))
    files = ToyFiles(clip, shared_toy_files.data_root, True)
    return path_options(files, 'TrainingFreeSegmentor',
                        ('test_dataloader', )) + [
        'test_dataloader.dataset.indices=8', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'model.decode_head.templates=single']


TRAINING_FREE_CONFIG = osp.join(REPO, 'configs', 'toy', 'maskclip_vit_toy.py')


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize('no_checkpoint', ['none', '-'])
def test_dist_test_runs_a_training_free_config_without_checkpoint(
        training_free_options, tmp_path, no_checkpoint):
    """`dist_test.sh CONFIG none 2`: MaskCLIP on the toy ViT CLIP, no
    checkpoint, two CPU processes; the mIoU of one process."""
    env = shell_env()
    out = run(['bash', 'tools/dist_test.sh', TRAINING_FREE_CONFIG,
               no_checkpoint, '2', '--work-dir', str(tmp_path / 'dist'),
               '--cfg-options', *training_free_options], env)
    assert 'Iter(test) [4/4]' in out and 'Iter(test) [8/8]' not in out
    assert 'no checkpoint given: initialising the model from its config' \
        in out
    dist_miou = miou(out, 'test')
    out = run([sys.executable, 'tools/test.py', TRAINING_FREE_CONFIG,
               '--work-dir', str(tmp_path / 'one'), '--cfg-options',
               *training_free_options],
              dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES=''))
    assert 'Iter(test) [8/8]' in out
    assert miou(out, 'test') == dist_miou


def test_dist_test_usage_names_the_no_checkpoint_placeholder():
    proc = subprocess.run(['bash', 'tools/dist_test.sh', TRAINING_FREE_CONFIG],
                          cwd=REPO, env=shell_env(), capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert 'CONFIG CHECKPOINT|none GPUS' in proc.stderr
