"""Speed and peak memory of a segmentor: inference (whole, slide) and training steps.

    python tools/benchmark.py [CONFIG] [--baseline CONFIG|none] [--size 512]
                              [--device auto|cpu|cuda]
                              [--modes whole slide train] [--text-cache both]
                              [--amp] [--compile [MODE]] [--channels-last]
                              [--iters 3] [--warmup 1] [--batch 1]
                              [--train-batch 2] [--threads N]
                              [--cfg-options k=v ...] [--json OUT.json]
                              [--methods maskclip sclip clearclip naclip]
                              [--profile STEPS [--profile-dir DIR]]
                              [--modes loop [--loop-images 64] [--workers 4]]

Random weights and random inputs; what each row measures, how speed and
peak memory are taken, and the figures measured: docs/performance.md. The
measurement itself is :mod:`denseclip.benchmark`.
"""
import argparse
import dataclasses
import logging
import os.path as osp
import warnings
from typing import List, Optional, Sequence

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'denseclip_fpn_r50_ade.py')
DEFAULT_BASELINE = osp.join(REPO, 'configs', 'fpn_clip_r50_ade.py')

EPILOG = """\
rows: whole (BATCH x 3 x SIZE x SIZE), slide (one SIZE x 4/3 SIZE image, the
config's crop and stride), train (TRAIN_BATCH images with random labels,
forward + backward + the config's optimizer step); loop (not by default: a
whole test run, tools/test.py's way, over --loop-images synthetic ADE20K-sized
JPEGs written in ADE20K's layout, the config's test dataloader with --workers
persistent workers and batches of --batch, model and metric; an iteration is
one pass over the folder). Random weights: no CLIP
file or checkpoint is read. Speed: the median (and fastest) of --iters timed
iterations, the rows of a mode timed in turn; cpu s: the process's CPU time.
Peak memory: CUDA max_memory_allocated, or the process's peak resident set
(Linux VmHWM, reset per iteration; '>=' where it cannot be reset), less what
the other model holds. Details and figures: docs/performance.md."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    from denseclip.apis import METHODS
    from denseclip.benchmark import ALL_MODES, MODES, TEXT_CACHE_CHOICES
    from denseclip.engine.compiled_inference import COMPILE_MODES
    parser = argparse.ArgumentParser(
        description='img/s and peak memory of inference and training steps',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG,
                        help='segmentor config (default: '
                        'configs/denseclip_fpn_r50_ade.py)')
    parser.add_argument('--baseline', default='auto',
                        help='a second config measured in the same run, with '
                        'img/s ratios; "none" for none (default: '
                        'configs/fpn_clip_r50_ade.py for the default config)')
    parser.add_argument('--size', type=int, default=512,
                        help='input side (default 512)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'],
                        default='auto',
                        help='auto: CPU, and CUDA when present')
    parser.add_argument('--modes', nargs='+', default=list(MODES),
                        choices=ALL_MODES,
                        help='default: whole slide train; loop: the test '
                        'loop with data loading')
    parser.add_argument('--text-cache', choices=TEXT_CACHE_CHOICES,
                        default='both',
                        help='DenseCLIP inference with the cached text '
                        'features, as the reference runs it (text encoder on '
                        'every forward; slide: crops one by one), or both '
                        '(default)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (bfloat16 where supported, else '
                        'float16): autocast inference, '
                        'MixedPrecisionOptimWrapper training')
    parser.add_argument('--compile', nargs='?', const='default', default=None,
                        choices=COMPILE_MODES, metavar='MODE',
                        help='torch.compile inference; MODE: default, '
                        'reduce-overhead (CUDA graphs), max-autotune; the '
                        'first forward (compiling) is reported apart')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last conv weights and inputs '
                        '(inference)')
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per row (default 3)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations first (default 1)')
    parser.add_argument('--batch', type=int, default=1,
                        help='images per whole-inference forward, and per '
                        'test-loop batch (--modes loop)')
    parser.add_argument('--loop-images', type=int, default=64,
                        help='--modes loop: synthetic ADE20K-sized images '
                        'per pass (default 64)')
    parser.add_argument('--workers', type=int, default=4,
                        help="--modes loop: the test loader's worker "
                        'processes (default 4; 0: load in this process)')
    parser.add_argument('--train-batch', type=int, default=2,
                        help='images per training step (default 2)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (CONFIG '
                        'only, not the baseline)')
    parser.add_argument('--methods', nargs='+', choices=sorted(METHODS),
                        help='training-free methods on CONFIG (a MaskCLIP '
                        'ViT config, e.g. configs/maskclip/maskclip_vit16_'
                        '512x512_voc12aug_20.py): one row set each, slide '
                        '224 / 112 windows batched, ratios against maskclip')
    parser.add_argument('--profile', type=int, default=0, metavar='STEPS',
                        help='after timing, run each row STEPS more times '
                        'under torch.profiler and print where the time goes '
                        '(device busy / idle, kernels, host syncs, top '
                        'kernels, largest gaps, time per model part)')
    parser.add_argument('--profile-dir',
                        help='with --profile: write each row\'s Chrome trace '
                        '(.json.gz) here')
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if args.batch < 1 or args.loop_images < 1 or args.workers < 0:
        parser.error('--batch and --loop-images must be >= 1, --workers >= 0')
    if args.profile < 0:
        parser.error('--profile must be >= 0')
    if args.profile_dir and not args.profile:
        parser.error('--profile-dir needs --profile STEPS')
    if args.compile and args.warmup < 1:
        parser.error('--compile needs --warmup >= 1 (the first forward '
                     'compiles)')
    if args.baseline == 'auto':
        args.baseline = (DEFAULT_BASELINE if osp.abspath(args.config)
                         == DEFAULT_CONFIG else None)
    elif args.baseline.lower() == 'none':
        args.baseline = None
    if args.methods:
        if 'train' in args.modes:
            args.modes = [m for m in args.modes if m != 'train']
        if not args.modes:
            parser.error('--methods measures inference: --modes whole slide')
        args.baseline = None
    for path in (args.config, args.baseline):
        if path is not None and not osp.isfile(path):
            parser.error(f'config {path} does not exist')
    return args


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    from mmengine.logging import MMLogger

    from denseclip.benchmark import (BenchmarkSettings, MethodsConfigError,
                                     benchmark_device, print_table, ratios)
    args = parse_args(argv)
    settings = BenchmarkSettings(**{
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(BenchmarkSettings)})
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ('auto', 'cpu'):
        devices.append(torch.device('cpu'))
    if args.device == 'cuda' or (args.device == 'auto'
                                 and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SystemExit('--device cuda: torch sees no CUDA device')
        devices.append(torch.device('cuda'))
    # quiet while measuring: no per-parameter init / optimizer-group messages
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    results = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for device in devices:
                try:
                    infos, rows = benchmark_device(settings, device,
                                                   display_root=REPO)
                except MethodsConfigError as err:  # before measuring
                    raise SystemExit(str(err)) from None
                print_table(infos, rows)
                results.append(dict(infos[0], baseline=infos[1:] or None,
                                    rows=rows, ratios=dict(ratios(rows)),
                                    ratios_best=dict(ratios(rows, True))))
    finally:
        logger.setLevel(level)
    if args.json:
        from denseclip.utils import write_json_atomic
        write_json_atomic(args.json, results)
    return results


if __name__ == '__main__':
    main()
