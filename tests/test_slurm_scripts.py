"""tools/slurm_train.sh and slurm_test.sh under a fake ``srun`` that records
its arguments and runs the command once as Slurm's task 0 of 1 (and a fake
``scontrol`` that names the node): srun's options from GPUS,
GPUS_PER_NODE, CPUS_PER_TASK and SRUN_ARGS, the tool with
``--launcher slurm``, and a run that trains or tests on the CPU (gloo)."""
import json
import os
import os.path as osp
import stat
import subprocess

import pytest

from test_dist_scripts import (CONFIG, REPO, TRAINING_FREE_CONFIG, miou,
                               shell_env)
# the fixtures
from test_dist_scripts import toy_options  # noqa: F401
from test_dist_scripts import training_free_options  # noqa: F401

FAKE_SRUN = r'''#!/usr/bin/env bash
# records its arguments, then runs the command (after srun's options) as
# task 0 of 1
python3 -c 'import json, sys
json.dump(sys.argv[2:], open(sys.argv[1], "w"))' "$SRUN_RECORD" "$@"
while [ $# -gt 0 ]; do
  case "$1" in
    -p) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=node-a \
  exec "$@"
'''
FAKE_SCONTROL = r'''#!/usr/bin/env bash
# `scontrol show hostname node-a` -> the address of node-a
[ "$1 $2 $3" = "show hostname node-a" ] && echo 127.0.0.1
'''


def _write_script(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def slurm_env(tmp_path):
    """The user's shell (venv not activated) with fake srun and scontrol
    first on PATH; srun's arguments recorded in ``SRUN_RECORD``."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _write_script(bin_dir / 'srun', FAKE_SRUN)
    _write_script(bin_dir / 'scontrol', FAKE_SCONTROL)
    env = shell_env()
    env.update(PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}',
               SRUN_RECORD=str(tmp_path / 'srun_args.json'),
               GPUS='1', GPUS_PER_NODE='1', CPUS_PER_TASK='2',
               SRUN_ARGS='--time=5 --quotatype=auto')
    env['MASTER_PORT'] = env.pop('PORT')
    return env


def _run(cmd, env):
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


def _srun_args(env):
    with open(env['SRUN_RECORD']) as f:
        return json.load(f)


def _srun_options(job):
    return ['-p', 'cpu_part', f'--job-name={job}', '--gres=gpu:1',
            '--ntasks=1', '--ntasks-per-node=1', '--cpus-per-task=2',
            '--kill-on-bad-exit=1', '--time=5', '--quotatype=auto']


def _python():
    return osp.join(REPO, '.venv', 'bin', 'python')


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize('checkpoint', [[], ['none'], ['-']],
                         ids=['omitted', 'none', 'dash'])
def test_slurm_test_runs_a_training_free_config_without_checkpoint(
        slurm_env, training_free_options, tmp_path,  # noqa: F811
        checkpoint):
    work_dir = str(tmp_path / 'work')
    options = ['--work-dir', work_dir, '--cfg-options',
               *training_free_options]
    out = _run(['bash', 'tools/slurm_test.sh', 'cpu_part', 'mc_test',
                TRAINING_FREE_CONFIG, *checkpoint, *options], slurm_env)
    assert _srun_args(slurm_env) == _srun_options('mc_test') + [
        _python(), '-u', osp.join(REPO, 'tools', 'test.py'),
        TRAINING_FREE_CONFIG, *checkpoint, '--launcher', 'slurm', *options]
    # the slurm launcher on the CPU: gloo, one process, the whole split
    assert 'no CUDA: distributed backend gloo instead of nccl' in out
    assert 'no checkpoint given' in out
    assert 'Iter(test) [8/8]' in out
    assert 0 <= miou(out, 'test') <= 100


@pytest.mark.slow
@pytest.mark.integration
def test_slurm_train_trains_on_the_cpu(slurm_env, toy_options,  # noqa: F811
                                       tmp_path):
    work_dir = str(tmp_path / 'train')
    options = ['--work-dir', work_dir, '--cfg-options', *toy_options,
               'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2',
               'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
               'param_scheduler.1.end=2']
    out = _run(['bash', 'tools/slurm_train.sh', 'cpu_part', 'dc_train',
                CONFIG, *options], slurm_env)
    assert _srun_args(slurm_env) == _srun_options('dc_train') + [
        _python(), '-u', osp.join(REPO, 'tools', 'train.py'), CONFIG,
        '--launcher', 'slurm', *options]
    assert 'no CUDA: distributed backend gloo instead of nccl' in out
    assert 'Iter(train) [2/2]' in out
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_print_their_usage(script):
    proc = subprocess.run(['bash', f'tools/{script}', 'part', 'job'],
                          cwd=REPO, env=shell_env(), capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert 'usage: bash tools/' + script + ' PARTITION JOB_NAME CONFIG' in \
        proc.stderr


def test_slurm_launcher_without_srun_environment_is_named(monkeypatch):
    from denseclip.engine.cpu_distributed import slurm_to_torch_env
    for key in ('SLURM_PROCID', 'SLURM_NTASKS'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='SLURM_PROCID, SLURM_NTASKS '
                       'missing.*tools/slurm_train.sh'):
        slurm_to_torch_env()
