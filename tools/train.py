"""Train a segmentor: mmseg's stock ``tools/train.py``, with denseclip registered.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
                          [--verbose] [--cfg-options k=v ...]
                          [--launcher pytorch]

The console shows the run: what was loaded, progress, losses, validation
metrics, errors. mmengine's environment, config dump, hook order and
per-parameter optimizer lines, and third-party warnings that say nothing
about your run, go to the log file in the work dir only (``--verbose``: to
the console too). The dataloaders' worker processes are stopped when
training ends (they leave no ``/tmp/pymp-*`` folders).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

import denseclip  # noqa: F401  (registers modules, lets checkpoints load)
from denseclip.engine import (build_runner, dataloader_workers_shut_down,
                              end_cpu_distributed_run, setup_train_run)
from denseclip.engine.matmul_precision import matmul_tf32_of
from denseclip.engine.mixed_precision_optim_wrapper import enable_amp
from denseclip.utils.tool_output import quiet_warnings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the newest complete checkpoint in the work_dir '
        '(or from load_from, if the config or --cfg-options give one)')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='mixed-precision training: bfloat16 autocast on the CPU and on '
        'GPUs that support it, float16 with dynamic loss scaling elsewhere')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_cfg.max_iters=1000 or model.backbone.pretrained=RN50.pt')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument(
        '--verbose', action='store_true',
        help="also print mmengine's environment, config, hook order and "
        'per-parameter optimizer settings and third-party warnings (the '
        "run's log file has the former either way)")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    with quiet_warnings(args.verbose):
        run(args)


def run(args: argparse.Namespace) -> None:
    """The training run of parsed ``args``."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # work_dir priority: CLI > config > config file name
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        # bfloat16 autocast where supported (CPU, Ampere+ GPUs), else float16
        # with dynamic loss scaling: denseclip.engine.MixedPrecisionOptimWrapper
        enable_amp(cfg)
    # CPU torchrun (gloo), kill-safe checkpoints, --resume from the newest
    # complete checkpoint
    setup_train_run(cfg, args.launcher, args.resume)
    # env_cfg.matmul_tf32: float32 matrix products in TF32 on the GPU
    with matmul_tf32_of(cfg):
        runner = build_runner(cfg, verbose=args.verbose)
        # the dataloaders' workers stopped after (no /tmp/pymp-* left)
        with dataloader_workers_shut_down(runner):
            runner.train()


if __name__ == '__main__':
    main()
    # a CPU torchrun process exits here, past gloo's C++ teardown
    end_cpu_distributed_run()
