"""Speed and peak memory of a segmentor: inference (whole, slide) and training steps.

    python tools/benchmark.py [CONFIG] [--size 512] [--device auto|cpu|cuda]
                              [--modes whole slide train] [--text-cache both]
                              [--iters 3] [--warmup 1] [--batch 1]
                              [--train-batch 2] [--cfg-options k=v ...]
                              [--json OUT.json]

The model is built from CONFIG (default ``configs/denseclip_fpn_r50_ade.py``)
with random weights: no CLIP file or checkpoint is read (``pretrained`` is
dropped, SyncBN becomes BN). Inputs are random images:

* ``whole``: ``batch x 3 x size x size``, ``test_cfg.mode='whole'``;
* ``slide``: one ``size x 4/3 size`` image (ADE20K's usual aspect ratio after
  the test resize), the config's slide crop and stride;
* ``train``: ``train_batch x 3 x size x size`` with random labels, one
  forward + backward + optimizer step with the config's ``optim_wrapper``.

For DenseCLIP, ``--text-cache`` picks inference with the cached text features
(``on``, the default behaviour), recomputed for every forward (``off``), or
both rows. Speed is the median over ``--iters`` timed iterations. Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU
the process's peak resident set size during the measurement (Linux
``VmHWM``, reset before each row through ``/proc/self/clear_refs``; where that
cannot be reset, ``getrusage`` maxrss, which never goes down, is shown with a
``>=``). ``--device auto`` measures on the CPU and, when present, on CUDA.
"""
import argparse
import json
import logging
import os
import os.path as osp
import platform
import re
import resource
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'denseclip_fpn_r50_ade.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='img/s and peak memory of inference and training steps')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG,
                        help='segmentor config (default: '
                        'configs/denseclip_fpn_r50_ade.py)')
    parser.add_argument('--size', type=int, default=512,
                        help='input side (default 512)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'],
                        default='auto',
                        help='auto: CPU, and CUDA when present')
    parser.add_argument('--modes', nargs='+', default=['whole', 'slide',
                                                       'train'],
                        choices=['whole', 'slide', 'train'])
    parser.add_argument('--text-cache', choices=['on', 'off', 'both'],
                        default='both',
                        help='DenseCLIP inference with the cached text '
                        'features, without (text encoder on every forward), '
                        'or both (default)')
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per row (default 3)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations first (default 1)')
    parser.add_argument('--batch', type=int, default=1,
                        help='images per whole-inference forward')
    parser.add_argument('--train-batch', type=int, default=2,
                        help='images per training step (default 2)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    return args


# --------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of one measurement on ``device`` (bytes)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.resettable = device.type == 'cuda' or self._cpu_reset()

    @staticmethod
    def _cpu_reset() -> bool:
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # resets VmHWM to the current RSS
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.resettable:
            self._cpu_reset()

    def peak(self) -> int:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device)
        try:
            status = open('/proc/self/status').read()
            return int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) * 1024
        except (OSError, AttributeError):
            scale = 1 if sys.platform == 'darwin' else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


# ---------------------------------------------------------------- model
def build_model(args: argparse.Namespace, device: torch.device):
    """The config's model with random weights on ``device``."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import denseclip  # noqa: F401
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pretrained = None
    for tower in ('backbone', 'text_encoder'):
        if tower in model_cfg and 'pretrained' in model_cfg[tower]:
            model_cfg[tower].pretrained = None
    if model_cfg.type == 'DenseCLIP' and model_cfg.get('class_names') is None:
        # a config taking names from its dataset: any names of the count
        model_cfg.class_names = [
            f'class {i}' for i in range(model_cfg.decode_head.num_classes)
        ]
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    return cfg, model.to(device)


def disable_text_cache(model) -> None:
    """Make DenseCLIP recompute its text features on every forward (every
    slide crop batch), as without the cache."""
    model.cache_text = False


def enable_text_cache(model) -> None:
    """Undo :func:`disable_text_cache`."""
    model.cache_text = True


def metas(h: int, w: int, n: int) -> List[dict]:
    return [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                 padding_size=[0, 0, 0, 0]) for _ in range(n)]


def samples(h: int, w: int, n: int, num_classes: int, device):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for meta in metas(h, w, n):
        s = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, num_classes, (1, h, w), device=device)))
        s.set_metainfo(meta)
        out.append(s)
    return out


# ---------------------------------------------------------- measurement
def measure(step: Callable[[], None], images: int, iters: int, warmup: int,
            memory: PeakMemory) -> Dict[str, float]:
    """Time ``iters`` calls of ``step`` after ``warmup`` untimed ones.

    Speed is from the median call (robust to other load on the machine);
    peak memory covers the timed calls.
    """
    sync = (lambda: torch.cuda.synchronize(memory.device)) if (
        memory.device.type == 'cuda') else (lambda: None)
    for _ in range(warmup):
        step()
    memory.reset()
    times = []
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return dict(img_per_s=images / seconds, s_per_iter=seconds,
                s_min=min(times), peak_bytes=memory.peak())


def benchmark_device(args: argparse.Namespace,
                     device: torch.device) -> Tuple[dict, List[dict]]:
    """Measure every requested mode on ``device``: (model info, rows)."""
    from mmengine.config import ConfigDict
    cfg, model = build_model(args, device)
    memory = PeakMemory(device)
    is_denseclip = hasattr(model, 'text_features')
    num_classes = model.num_classes
    size = args.size
    rows = []
    caches = ({'on': [True], 'off': [False], 'both': [True, False]}
              [args.text_cache] if is_denseclip else [True])

    for mode in args.modes:
        if mode in ('whole', 'slide'):
            model.eval()
            if mode == 'whole':
                h, w, n = size, size, args.batch
                model.test_cfg = ConfigDict(cfg.model.test_cfg, mode='whole')
            else:
                h, w, n = size, size * 4 // 3, 1
                if cfg.model.test_cfg.get('mode') != 'slide':
                    raise SystemExit(
                        f'{args.config}: test_cfg has no slide setting '
                        '(mode, crop_size, stride); drop --modes slide')
                model.test_cfg = ConfigDict(cfg.model.test_cfg)
            inputs = torch.randn(n, 3, h, w, device=device)
            batch_metas = metas(h, w, n)

            def step():
                with torch.no_grad():
                    model.inference(inputs, batch_metas)

            for cached in caches:
                if not cached:
                    disable_text_cache(model)
                try:
                    result = measure(step, n, args.iters, args.warmup, memory)
                finally:
                    enable_text_cache(model)
                label = f'inference {mode}'
                if mode == 'slide':
                    crop, stride = (model.test_cfg['crop_size'],
                                    model.test_cfg['stride'])
                    label += (f' ({_num_crops(h, w, crop, stride)} crops of '
                              f'{crop[0]}x{crop[1]})')
                if is_denseclip:
                    label += ', text cache' if cached else ', no text cache'
                rows.append(dict(mode=mode, label=label,
                                 input=f'{n}x3x{h}x{w}', text_cache=cached,
                                 **result))
        else:
            from mmengine.optim import build_optim_wrapper
            model.train()
            optim = build_optim_wrapper(model, cfg.optim_wrapper.copy())
            n = args.train_batch
            inputs = torch.randn(n, 3, size, size, device=device)
            data_samples = samples(size, size, n, num_classes, device)

            def step():
                losses = model.loss(inputs, data_samples)
                loss = sum(v for k, v in losses.items() if 'loss' in k)
                optim.update_params(loss)

            result = measure(step, n, args.iters, args.warmup, memory)
            label = f'train step ({cfg.optim_wrapper.optimizer.type})'
            rows.append(dict(mode='train', label=label,
                             input=f'{n}x3x{size}x{size}', text_cache=None,
                             **result))
    config = osp.abspath(args.config)
    if config.startswith(REPO + os.sep):
        config = osp.relpath(config, REPO)
    device_name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
                   else platform.processor() or platform.machine())
    info = dict(config=config, model=type(model).__name__,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                num_classes=num_classes, device=str(device),
                device_name=device_name, threads=torch.get_num_threads(),
                torch=torch.__version__, peak_resettable=memory.resettable)
    return info, rows


def _num_crops(h, w, crop, stride) -> int:
    rows = max(h - crop[0] + stride[0] - 1, 0) // stride[0] + 1
    cols = max(w - crop[1] + stride[1] - 1, 0) // stride[1] + 1
    return rows * cols


def print_table(info: dict, rows: List[dict]) -> None:
    print(f'\n{info["config"]}: {info["model"]}, {info["params_m"]:.1f} M '
          f'params, {info["num_classes"]} classes, random weights')
    print(f'device {info["device"]} ({info["device_name"]}, '
          f'{info["threads"]} threads), torch {info["torch"]}')
    ge = '' if info['peak_resettable'] else '>='
    width = max(len(row['label']) for row in rows)
    print(f'{"":{width}s} {"input":>14s} {"img/s":>8s} {"s/iter":>8s} '
          f'{"best":>8s} {"peak mem":>12s}')
    for row in rows:
        print(f'{row["label"]:{width}s} {row["input"]:>14s} '
              f'{row["img_per_s"]:8.3f} {row["s_per_iter"]:8.3f} '
              f'{row["s_min"]:8.3f} {ge:>2s}{row["peak_bytes"] / 2**30:6.2f} '
              'GiB')
    print('(img/s and s/iter: median iteration; best: fastest iteration)')


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    from mmengine.logging import MMLogger
    args = parse_args(argv)
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
                info, rows = benchmark_device(args, device)
                print_table(info, rows)
                results.append(dict(info, rows=rows))
    finally:
        logger.setLevel(level)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
