"""Distributed training and testing without a GPU: gloo, CPU DDP, SyncBN -> BN.

mmengine 0.10.7 assumes a GPU per process: its ``init_dist('pytorch')`` calls
``torch.cuda.set_device`` (on a CPU-only torch: ``module 'torch._C' has no
attribute '_cuda_setDevice'``), its DDP wrapper passes
``device_ids=[LOCAL_RANK]`` (DDP refuses device ids for a CPU module), and
torch's ``SyncBatchNorm`` trains only on GPUs. :func:`setup_distributed`,
which ``tools/train.py`` and ``tools/test.py`` call before building the
runner, therefore does, when launched by torchrun without CUDA:

* ``torch.distributed.init_process_group('gloo')`` from torchrun's
  environment (the runner then skips its own ``init_dist``);
* ``model_wrapper_cfg = dict(type='mmseg.CPUDistributedDataParallel')``
  (the scope is needed: the runner looks wrappers up in mmengine's root
  registry, which finds mmseg's only by prefix): mmengine's
  DDP wrapper on CPU, which first turns every SyncBN layer into BN
  (mmengine's ``revert_sync_batchnorm``) and says so in the log.

Launched by srun (``--launcher slurm``, tools/slurm_*.sh) without CUDA, the
same, from Slurm's task variables (:func:`slurm_to_torch_env`).

With CUDA it changes nothing: mmengine's own path (nccl) is used.
"""
import atexit
import datetime
import logging
import os
import subprocess
import sys
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmseg.registry import MODEL_WRAPPERS
from torch import nn

__all__ = [
    'CPUDistributedDataParallel', 'end_cpu_distributed_run', 'setup_distributed'
]

WRAPPER_TYPE = 'mmseg.CPUDistributedDataParallel'
# set by setup_distributed when this process took the CPU (gloo) path
_cpu_run = False


def _count_sync_bn(module: nn.Module) -> int:
    return sum(isinstance(m, nn.SyncBatchNorm) for m in module.modules())


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for models on the CPU (gloo backend).

    SyncBN layers are converted to BN first (torch's SyncBatchNorm needs a
    GPU to train): each process then normalises with its own batch's
    statistics. After every training step the buffers (BN's running
    statistics) are broadcast from rank 0, so every process holds what a
    checkpoint saves (rank 0's) and a validation during training scores
    exactly that; DDP's own broadcast before each forward would leave the
    last step's updates rank-local. ``device_ids`` must be None for a CPU
    module; the runner's default (``[LOCAL_RANK]``) is dropped.
    """

    def __init__(self, module: nn.Module, device_ids=None, **kwargs):
        n_sync = _count_sync_bn(module)
        if n_sync:
            module = revert_sync_batchnorm(module)
            print_log(
                f'CPU distributed run: {n_sync} SyncBN layer(s) converted to '
                'BN (torch\'s SyncBatchNorm trains only on GPUs); each process '
                'normalises over its own batch', logger='current',
                level=logging.WARNING)
        kwargs.setdefault('broadcast_buffers', False)
        super().__init__(module=module, device_ids=None, **kwargs)

    def train_step(self, data, optim_wrapper):
        log_vars = super().train_step(data, optim_wrapper)
        with torch.no_grad():
            for buffer in self.module.buffers():
                torch_dist.broadcast(buffer, src=0)
        return log_vars


def _destroy_process_group() -> None:
    # gloo's threads must be joined before the interpreter exits, or a
    # process can abort at exit ('terminate called without an active
    # exception', SIGABRT) after a successful run
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def end_cpu_distributed_run() -> None:
    """End a CPU torchrun process whose work is done (``tools/*.py``'s last call).

    DDP's C++ side keeps the gloo process group alive after
    ``destroy_process_group`` (its worker threads are still running), so
    they run into the interpreter's C++ teardown, and a process can abort
    there (SIGABRT, 'terminate called without an active exception') after
    a successful run, which torchrun reports as a failed job. Here all
    ranks meet at a barrier, the group is destroyed, logs and streams are
    flushed, and the process exits with status 0 without that teardown.
    Checkpoints are on disk already (written, synced and renamed by
    :class:`AtomicCheckpointHook`). Does nothing outside the CPU path.
    """
    if not (_cpu_run and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def slurm_to_torch_env() -> None:
    """Set torch's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
    and ``MASTER_PORT`` from the variables srun gives each task, as
    mmengine's ``init_dist('slurm')`` does (the first host of
    ``SLURM_NODELIST`` by ``scontrol``; ``MASTER_ADDR`` / ``MASTER_PORT``
    where set win; port 29500 by default)."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs the environment srun sets '
            f'({", ".join(missing)} missing): start it with '
            'tools/slurm_train.sh / tools/slurm_test.sh')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ.get('SLURM_NODELIST', '')
        try:
            addr = subprocess.run(
                ['scontrol', 'show', 'hostname', node_list],
                capture_output=True, text=True).stdout.split()[:1]
        except OSError:  # no scontrol on PATH
            addr = []
        if not addr:
            raise RuntimeError(
                f'--launcher slurm: no host found in SLURM_NODELIST '
                f'{node_list!r} (scontrol show hostname); set MASTER_ADDR')
        os.environ['MASTER_ADDR'] = addr[0]


def setup_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare a torchrun (``launcher='pytorch'``) or srun (``'slurm'``)
    run on a machine without CUDA.

    Returns whether the CPU path was taken. Sets ``cfg.env_cfg.dist_cfg``'s
    backend to gloo, initialises the process group and selects
    :class:`CPUDistributedDataParallel` unless the config names a wrapper.
    """
    global _cpu_run
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        slurm_to_torch_env()
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs the environment torchrun sets '
            f'({", ".join(missing)} missing): start it with '
            'tools/dist_train.sh / tools/dist_test.sh')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        print_log(f'no CUDA: distributed backend gloo instead of '
                  f'{dist_cfg.get("backend", "nccl")}', logger='current')
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        timeout: Optional[float] = dist_cfg.get('timeout')
        kwargs = {}
        if timeout is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        torch_dist.init_process_group(backend='gloo', **kwargs)
        atexit.register(_destroy_process_group)
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        # mmengine reads find_unused_parameters only when it builds the
        # default wrapper itself
        cfg.model_wrapper_cfg = dict(
            type=WRAPPER_TYPE,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') in (
            'MMDistributedDataParallel', 'DistributedDataParallel'):
        wrapper['type'] = WRAPPER_TYPE
    _cpu_run = True
    return True
