"""Kill and resume: a real toy run killed with SIGKILL (between checkpoints,
and while it writes one) resumes with ``tools/train.py CONFIG --resume`` and
ends with the same losses, learning rates and weights as an uninterrupted
run; broken checkpoints are never resumed from and are named when loaded."""
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from denseclip_helpers import load_tool
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import HOOKS
from tiny_runner import mmengine_log, runner_cfg, write_dataset

from denseclip.toy.run_options import path_options
from denseclip.engine import (CheckpointFileError, find_resumable_checkpoint,
                              setup_train_run)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'toy', 'denseclip_toy.py')
ITERS = 6


@pytest.fixture(scope='module')
def toy(shared_toy_files):
    # the config's pipeline (random resize, crop, flip, photometric
    # distortion; 2 workers), dropout, warm-up then poly lr; checkpoints every
    # 2 iterations (max_keep_ckpts=1 as in the config), every loss logged,
    # no validation (test_resumed_run_continues_the_random_streams has it)
    return path_options(shared_toy_files) + [
        f'train_cfg.max_iters={ITERS}', f'train_cfg.val_begin={ITERS + 1}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
        f'param_scheduler.1.end={ITERS}'
    ]


# Runs tools/train.py; with ``die_writing`` the process SIGKILLs itself half
# way through writing that file (a real kill at the worst moment).
_LAUNCH = textwrap.dedent('''
    import os, signal, sys
    sys.path.insert(0, {tools!r})
    die_writing = {die_writing!r}
    if die_writing:
        from mmengine.fileio.backends.local_backend import LocalBackend
        put = LocalBackend.put

        def put_and_die(self, obj, filepath):
            if os.path.basename(str(filepath)) == die_writing:
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                    f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return put(self, obj, filepath)

        LocalBackend.put = put_and_die
    import train
    train.main(sys.argv[1:])
''')


def train(work_dir, options, *extra, die_writing=None, kill_after=None):
    """Run tools/train.py on the toy config; return (returncode, output).

    ``kill_after``: SIGKILL the process once it logs that iteration.
    """
    code = _LAUNCH.format(tools=osp.join(REPO, 'tools'),
                          die_writing=die_writing)
    cmd = [sys.executable, '-c', code, CONFIG, '--work-dir', work_dir,
           *extra, '--cfg-options', *options]
    # on the CPU, also where there is a GPU: the contract is bit-equal
    # losses, which CUDA's non-deterministic kernels do not keep
    env = dict(os.environ, PYTHONUNBUFFERED='1', CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=os.pathsep.join(
                   p for p in (REPO, os.environ.get('PYTHONPATH')) if p))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        # mmengine pads the iteration to the width of max_iters
        width = len(str(ITERS))
        if kill_after and f'Iter(train) [{kill_after:>{width}}/{ITERS}]' \
                in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.stdout.close()
    return proc.wait(), ''.join(lines)


def history(ckpt, key):
    hub = torch.load(ckpt, map_location='cpu')['message_hub']
    return hub['log_scalars'][key].data[0]


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.basename(f.read().strip())


@pytest.mark.slow
@pytest.mark.integration
def test_killed_run_resumes_with_the_same_losses(toy, tmp_path):
    ref_dir = str(tmp_path / 'uninterrupted')
    rc, out = train(ref_dir, toy)
    assert rc == 0, out[-3000:]
    ref = osp.join(ref_dir, f'iter_{ITERS}.pth')

    work_dir = str(tmp_path / 'killed')
    # 1. SIGKILL between checkpoints (after iteration 3; the last complete
    #    checkpoint is iter_2)
    rc, out = train(work_dir, toy, kill_after=3)
    assert rc == -signal.SIGKILL
    assert sorted(f for f in os.listdir(work_dir) if '.pth' in f) == [
        'iter_2.pth']
    assert last_checkpoint(work_dir) == 'iter_2.pth'

    # 2. resumed, then SIGKILLed half way through writing iter_4: that file
    #    stays a .partial, iter_2 is not deleted (max_keep_ckpts=1: mmengine's
    #    own hook deletes it first), last_checkpoint is unchanged
    rc, out = train(work_dir, toy, '--resume',
                    die_writing='iter_4.pth.partial')
    assert rc == -signal.SIGKILL, out[-3000:]
    assert re.search(r'resuming from \S*iter_2\.pth', out)
    assert 'Advance dataloader 2 steps' in out
    assert sorted(f for f in os.listdir(work_dir) if '.pth' in f) == [
        'iter_2.pth', 'iter_4.pth.partial']
    assert last_checkpoint(work_dir) == 'iter_2.pth'

    # 3. resumed again: from iter_2, the partial file removed, to the end
    rc, out = train(work_dir, toy, '--resume')
    assert rc == 0, out[-3000:]
    assert 'iter_4.pth.partial: a checkpoint that an interrupted run' in out
    assert 'continuing the random states of iteration 2' in out
    assert sorted(f for f in os.listdir(work_dir) if '.pth' in f) == [
        f'iter_{ITERS}.pth']
    resumed = osp.join(work_dir, f'iter_{ITERS}.pth')

    # every iteration's loss and learning rate, bit for bit, and the weights
    ref_loss, loss = history(ref, 'train/loss'), history(resumed, 'train/loss')
    assert len(ref_loss) == len(loss) == ITERS
    np.testing.assert_array_equal(loss, ref_loss)
    np.testing.assert_array_equal(history(resumed, 'train/lr'),
                                  history(ref, 'train/lr'))
    ref_state = torch.load(ref, map_location='cpu')
    state = torch.load(resumed, map_location='cpu')
    assert state['meta']['iter'] == ITERS
    for key, value in ref_state['state_dict'].items():
        assert torch.equal(state['state_dict'][key], value), key
    assert [g['lr'] for g in state['optimizer']['param_groups']] == [
        g['lr'] for g in ref_state['optimizer']['param_groups']]
    moments = ref_state['optimizer']['state']  # AdamW's step, exp_avg ...
    assert moments and state['optimizer']['state'].keys() == moments.keys()
    for index, values in moments.items():
        for name, value in values.items():
            assert torch.equal(state['optimizer']['state'][index][name],
                               value), (index, name)


# --- in-process: the random streams, broken checkpoints ---------------------


class _Killed(Exception):
    pass


@HOOKS.register_module(force=True)
class _DieBeforeIter(Hook):
    """Stands in for a kill: the run stops right before iteration ``at``."""

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            raise _Killed


# random augmentations in the main process (num_workers=0) and dropout:
# both random streams matter
RANDOM_PIPELINE = [
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5), dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny') / 'data')
    write_dataset(root)
    return root


def _run(data_root, work_dir, reliable, resume=False, die_at=None):
    cfg = runner_cfg(data_root, work_dir, osp.basename(work_dir), max_iters=6,
                     train_pipeline=RANDOM_PIPELINE, dropout_ratio=0.5)
    if die_at:
        cfg.custom_hooks = [dict(type='_DieBeforeIter', at=die_at)]
    if reliable:
        setup_train_run(cfg, 'none', resume)
    else:  # mmengine as it is
        cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    except _Killed:
        pass
    return osp.join(work_dir, 'iter_6.pth')


@pytest.mark.slow
@pytest.mark.parametrize('reliable', [True, False],
                         ids=['RandomStateHook', 'mmengine_alone'])
def test_resumed_run_continues_the_random_streams(data_root, tmp_path,
                                                  reliable):
    """Losses after a resume equal the uninterrupted run's with the random
    states restored (and validation kept out of the training stream); with
    mmengine alone they differ: dropout and the augmentations restart from
    the seed. The control shows that the test can fail."""
    ref = _run(data_root, str(tmp_path / 'ref'), reliable)
    work_dir = str(tmp_path / 'run')
    _run(data_root, work_dir, reliable, die_at=5)  # after iter_4's checkpoint
    assert not osp.exists(osp.join(work_dir, 'iter_6.pth'))
    resumed = _run(data_root, work_dir, reliable, resume=True)
    ref_loss = history(ref, 'train/loss')
    loss = history(resumed, 'train/loss')
    assert len(loss) == len(ref_loss) == 6
    np.testing.assert_array_equal(loss[:4], ref_loss[:4])  # restored history
    np.testing.assert_array_equal(history(resumed, 'train/lr'),
                                  history(ref, 'train/lr'))
    if reliable and not torch.cuda.is_available():
        np.testing.assert_array_equal(loss[4:], ref_loss[4:])
    elif reliable:  # the runner trains on the GPU: non-deterministic kernels
        np.testing.assert_allclose(loss[4:], ref_loss[4:], rtol=1e-4)
    else:  # dropout masks and flips differ
        assert not np.array_equal(loss[4:], ref_loss[4:])


def _truncate(src, dst, fraction=0.5):
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])


@pytest.fixture(scope='module')
def complete_ckpt(data_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('complete'))
    cfg = runner_cfg(data_root, work_dir, 'complete', max_iters=2)
    setup_train_run(cfg, 'none', False)
    Runner.from_cfg(cfg).train()
    return osp.join(work_dir, 'iter_2.pth')


def test_a_truncated_latest_checkpoint_is_never_resumed(complete_ckpt,
                                                        tmp_path):
    """last_checkpoint names iter_6 (truncated, as mmengine's own hook can
    leave it); iter_5 is empty, iter_4 not a checkpoint: the resume takes
    iter_2 and names each file it skipped."""
    work_dir = tmp_path
    shutil.copy(complete_ckpt, work_dir / 'iter_2.pth')
    # what a kill while writing last_checkpoint would leave: deleted on resume
    (work_dir / 'last_checkpoint.partial.123').write_text('half')
    _truncate(complete_ckpt, work_dir / 'iter_6.pth')
    (work_dir / 'iter_5.pth').write_bytes(b'')
    (work_dir / 'iter_4.pth').write_text('not a checkpoint')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_6.pth'))
    with mmengine_log() as records:
        found = find_resumable_checkpoint(str(work_dir))
    assert found == str(work_dir / 'iter_2.pth')
    log = '\n'.join(records)
    assert f'not resuming from {work_dir}/iter_6.pth' in log
    assert 'is truncated or damaged' in log
    assert f'skipping {work_dir}/iter_5.pth: is empty' in log
    assert f'skipping {work_dir}/iter_4.pth: is not a PyTorch checkpoint' \
        in log

    # tools/train.py --resume: resumes from it; nothing complete: from scratch
    cfg = Config(dict(work_dir=str(work_dir), default_hooks=dict(
        checkpoint=dict(type='CheckpointHook', interval=2))))
    setup_train_run(cfg, 'none', True)
    assert cfg.load_from == str(work_dir / 'iter_2.pth') and cfg.resume
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert {'type': 'RandomStateHook'} in cfg.custom_hooks
    assert not (work_dir / 'last_checkpoint.partial.123').exists()
    os.remove(work_dir / 'iter_2.pth')
    cfg = Config(dict(work_dir=str(work_dir)))
    setup_train_run(cfg, 'none', True)
    assert cfg.load_from is None and cfg.resume is False


@pytest.mark.parametrize('damage, reason', [
    ('truncate', 'is truncated or damaged'),
    ('empty', r'is empty \(0 bytes\)'),
    ('text', 'is not a PyTorch checkpoint'),
    ('missing', 'does not exist'),
])
def test_loading_a_broken_checkpoint_names_the_file(complete_ckpt, tmp_path,
                                                    damage, reason):
    path = str(tmp_path / 'iter_2.pth')
    if damage == 'truncate':
        _truncate(complete_ckpt, path)
    elif damage == 'empty':
        open(path, 'wb').close()
    elif damage == 'text':
        with open(path, 'w') as f:
            f.write('hello')
    message = f'checkpoint {re.escape(path)} {reason}'
    # tools/test.py and tools/train.py (load_from) stop before the runner
    tool = load_tool('test')
    with pytest.raises(SystemExit, match=message):
        tool.main([CONFIG, path])
    with pytest.raises(SystemExit, match=message):
        setup_train_run(Config(dict(work_dir=str(tmp_path),
                                    load_from=path)), 'none', False)
    # and mmengine's loader, wherever a run loads it
    if damage != 'missing':
        with pytest.raises(CheckpointFileError, match=message):
            _load_checkpoint(path, map_location='cpu')
