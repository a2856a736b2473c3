"""Speed and peak memory of a segmentor: inference (whole, slide) and training steps.

    python tools/benchmark.py [CONFIG] [--baseline CONFIG|none] [--size 512]
                              [--device auto|cpu|cuda]
                              [--modes whole slide train] [--text-cache both]
                              [--amp] [--compile [MODE]] [--channels-last]
                              [--iters 3] [--warmup 1] [--batch 1]
                              [--train-batch 2] [--threads N]
                              [--cfg-options k=v ...] [--json OUT.json]

The model is built from CONFIG (default ``configs/denseclip_fpn_r50_ade.py``)
with random weights: no CLIP file or checkpoint is read (``pretrained`` is
dropped, SyncBN becomes BN). Inputs are random images:

* ``whole``: ``batch x 3 x size x size``, ``test_cfg.mode='whole'``;
* ``slide``: one ``size x 4/3 size`` image (ADE20K's usual aspect ratio after
  the test resize), the config's slide crop and stride;
* ``train``: ``train_batch x 3 x size x size`` with random labels, one
  forward + backward + optimizer step with the config's ``optim_wrapper``.

For DenseCLIP, ``--text-cache`` picks inference as configured (``on``: the
cached text features), **as the reference DenseCLIP runs it** (``off``: the
whole text encoder, every class's full sequence, on every forward; slide
inference as mmseg 0.x's ``slide_inference``: crops one at a time, each
crop's logits zero-padded to the image size and summed, then divided), or
both rows (the default), with their ratio.

``--baseline``: a second config measured in the same run, its rows
interleaved with CONFIG's, and the img/s ratio printed per mode; by default
``configs/fpn_clip_r50_ade.py`` (CLIP RN50 + FPN, DenseCLIP-R50's baseline)
when CONFIG is the default, none otherwise.

``--amp``: training through ``MixedPrecisionOptimWrapper`` (bfloat16 on the
CPU and on GPUs that support it, else float16 with loss scaling), inference
under the same autocast. ``--compile [MODE]``: inference through
``torch.compile`` (``denseclip.engine.compile_for_inference``; MODE
``default``, ``reduce-overhead`` = CUDA graphs, ``max-autotune``); the first
forward, which compiles, is reported apart. ``--channels-last``: conv weights
and inputs in channels-last memory format (inference).

Speed is the median over ``--iters`` timed iterations; the rows of one mode
are timed in turn (A, B, A, B ...), so that changing load on the machine
affects them alike. ``cpu s``: the process's CPU time per iteration (all
threads); well below ``s/iter x threads``, the process was waiting for a
core. The 1-minute load average before and after is printed too. Peak
memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the process's
peak resident set size during the measurement (Linux ``VmHWM``, reset
before each timed iteration through ``/proc/self/clear_refs``; where that
cannot be reset, ``getrusage`` maxrss, which never goes down, is shown with
a ``>=``). With ``--baseline`` the memory the other model holds (weights,
buffers, optimizer state) is subtracted. ``--device auto`` measures on the
CPU and, when present, on CUDA.
"""
import argparse
import gc
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
from typing import Callable, List, Optional, Sequence, Tuple

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'denseclip_fpn_r50_ade.py')
DEFAULT_BASELINE = osp.join(REPO, 'configs', 'fpn_clip_r50_ade.py')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    from denseclip.engine.compiled_inference import COMPILE_MODES
    parser = argparse.ArgumentParser(
        description='img/s and peak memory of inference and training steps')
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
    parser.add_argument('--modes', nargs='+', default=['whole', 'slide',
                                                       'train'],
                        choices=['whole', 'slide', 'train'])
    parser.add_argument('--text-cache', choices=['on', 'off', 'both'],
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
                        'reduce-overhead (CUDA graphs), max-autotune')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last conv weights and inputs '
                        '(inference)')
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
                        help='override config settings, key=value (CONFIG '
                        'only, not the baseline)')
    parser.add_argument('--json', help='also write the rows to this file')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if args.compile and args.warmup < 1:
        parser.error('--compile needs --warmup >= 1 (the first forward '
                     'compiles)')
    if args.baseline == 'auto':
        args.baseline = (DEFAULT_BASELINE if osp.abspath(args.config)
                         == DEFAULT_CONFIG else None)
    elif args.baseline.lower() == 'none':
        args.baseline = None
    for path in (args.config, args.baseline):
        if path is not None and not osp.isfile(path):
            parser.error(f'config {path} does not exist')
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


def held_bytes(model, optim=None) -> int:
    """Bytes of ``model``'s parameters and buffers and ``optim``'s state."""
    tensors = list(model.parameters()) + list(model.buffers())
    if optim is not None:
        for state in optim.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
    seen, total = set(), 0
    for t in tensors:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


# ---------------------------------------------------------------- model
def build_model(config: str, cfg_options: Optional[dict],
                device: torch.device):
    """The config's model with random weights on ``device``."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import denseclip  # noqa: F401
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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


def as_the_reference(model) -> None:
    """DenseCLIP's text encoder as the reference ran it: every class's whole
    sequence, no cache (undo with :func:`as_ours`)."""
    model.cache_text = False
    model.share_text_prefix = False


def as_ours(model) -> None:
    model.cache_text = True
    model.share_text_prefix = True


def reference_slide_inference(model, inputs: torch.Tensor,
                              batch_img_metas: List[dict]) -> torch.Tensor:
    """mmseg 0.x's ``EncoderDecoder.slide_inference``, as the reference
    DenseCLIP ran it: crops one at a time through ``encode_decode`` (the
    whole text encoder on each: call after :func:`as_the_reference`), each
    crop's logits zero-padded to the image size and added, then divided by
    the count."""
    import torch.nn.functional as F
    h_stride, w_stride = model.test_cfg.stride
    h_crop, w_crop = model.test_cfg.crop_size
    batch_size, _, h_img, w_img = inputs.size()
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    preds = inputs.new_zeros((batch_size, model.out_channels, h_img, w_img))
    count_mat = inputs.new_zeros((batch_size, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * h_stride, w_idx * w_stride
            y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
            y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
            crop_img = inputs[:, :, y1:y2, x1:x2]
            metas = [dict(m, img_shape=crop_img.shape[2:])
                     for m in batch_img_metas]
            crop_seg_logit = model.encode_decode(crop_img, metas)
            preds += F.pad(crop_seg_logit,
                           (int(x1), int(preds.shape[3] - x2), int(y1),
                            int(preds.shape[2] - y2)))
            count_mat[:, :, y1:y2, x1:x2] += 1
    return preds / count_mat


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
class Subject:
    """One model under test: its config, rows and what it holds in memory."""

    def __init__(self, name: str, config: str, cfg, model):
        self.name = name
        self.config = config
        self.cfg = cfg
        self.model = model
        self.optim = None
        self.is_denseclip = hasattr(model, 'text_features')

    def held(self) -> int:
        return held_bytes(self.model, self.optim)


def measure(rows: List[dict], iters: int, warmup: int, memory: PeakMemory,
            others_held: Callable[[dict], int]) -> None:
    """Time ``row['step']`` for every row, in turn, ``iters`` times after
    ``warmup`` untimed calls each; fills in the row's results.

    Speed is from the median call (robust to other load on the machine);
    peak memory is the highest over the timed calls, less what the other
    models hold.
    """
    device = memory.device
    sync = (lambda: torch.cuda.synchronize(device)) if (
        device.type == 'cuda') else (lambda: None)
    for row in rows:
        for i in range(warmup):
            sync()
            start = time.perf_counter()
            row['step']()
            sync()
            if i == 0:
                row['first_s'] = time.perf_counter() - start
    times = {id(row): [] for row in rows}
    cpu = {id(row): [] for row in rows}
    peaks = {id(row): 0 for row in rows}
    for _ in range(iters):
        for row in rows:
            memory.reset()
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            row['step']()
            sync()
            times[id(row)].append(time.perf_counter() - start)
            cpu[id(row)].append(time.process_time() - start_cpu)
            peaks[id(row)] = max(peaks[id(row)], memory.peak())
    for row in rows:
        seconds = statistics.median(times[id(row)])
        row.update(img_per_s=row['images'] / seconds, s_per_iter=seconds,
                   s_min=min(times[id(row)]),
                   best_img_per_s=row['images'] / min(times[id(row)]),
                   cpu_s=statistics.median(cpu[id(row)]),
                   peak_bytes=peaks[id(row)] - others_held(row))


def inference_rows(subject: Subject, mode: str, args: argparse.Namespace,
                   device: torch.device) -> List[dict]:
    """Row dicts (with their ``step``) of one inference mode."""
    from mmengine.config import ConfigDict
    model, cfg, size = subject.model, subject.cfg, args.size
    # once, not per step: DenseCLIP drops its text cache on train()/eval()
    model.eval()
    if mode == 'whole':
        h, w, n = size, size, args.batch
        test_cfg = ConfigDict(cfg.model.test_cfg, mode='whole')
    else:
        h, w, n = size, size * 4 // 3, 1
        if cfg.model.test_cfg.get('mode') != 'slide':
            raise SystemExit(
                f'{subject.config}: test_cfg has no slide setting '
                '(mode, crop_size, stride); drop --modes slide')
        test_cfg = ConfigDict(cfg.model.test_cfg)
    inputs = torch.randn(n, 3, h, w, device=device)
    batch_metas = metas(h, w, n)
    label = f'inference {mode}'
    if mode == 'slide':
        crop, stride = test_cfg['crop_size'], test_cfg['stride']
        num = _num_crops(h, w, crop, stride)
        label += (f' ({num} crop{"s" if num > 1 else ""} of '
                  f'{crop[0]}x{crop[1]})')
    variants = ({'on': [False], 'off': [True], 'both': [False, True]}
                [args.text_cache] if subject.is_denseclip else [False])
    rows = []
    for reference in variants:

        def step(reference=reference):
            model.test_cfg = test_cfg
            if reference:
                as_the_reference(model)
            try:
                with torch.no_grad():
                    if reference and mode == 'slide':
                        reference_slide_inference(model, inputs, batch_metas)
                    else:
                        model.inference(inputs, batch_metas)
            finally:
                if reference:
                    as_ours(model)

        row_label = label
        if reference:
            row_label += (', reference pipeline (text per crop, 1 at a time)'
                          if mode == 'slide' else
                          ', reference (text encoder on every forward)')
        elif subject.is_denseclip:
            row_label += ', text cache'
        rows.append(dict(model=subject.name, mode=mode, label=row_label,
                         input=f'{n}x3x{h}x{w}', images=n,
                         text_cache=(not reference) if subject.is_denseclip
                         else None, reference=reference, step=step))
    return rows


def train_row(subject: Subject, args: argparse.Namespace,
              device: torch.device) -> dict:
    """The training-step row (builds the subject's optimizer wrapper)."""
    from mmengine.optim import build_optim_wrapper
    model, cfg, size, n = subject.model, subject.cfg, args.size, args.train_batch
    optim_cfg = cfg.optim_wrapper.copy()
    if args.amp:
        from denseclip.engine.mixed_precision_optim_wrapper import enable_amp
        holder = type('Cfg', (), {})()
        holder.optim_wrapper = optim_cfg
        enable_amp(holder)
    subject.optim = optim = build_optim_wrapper(model, optim_cfg)
    inputs = torch.randn(n, 3, size, size, device=device)
    data_samples = samples(size, size, n, subject.model.num_classes, device)

    model.train()

    def step():
        with optim.optim_context(model):
            losses = model.loss(inputs, data_samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.update_params(loss)

    optimizer = cfg.optim_wrapper.optimizer.type
    label = f'train step ({optimizer}'
    if args.amp:
        label += f', {str(optim.cast_dtype).replace("torch.", "")} autocast'
    label += ')'
    return dict(model=subject.name, mode='train', label=label,
                input=f'{n}x3x{size}x{size}', images=n, text_cache=None,
                reference=False, step=step)


def benchmark_device(args: argparse.Namespace,
                     device: torch.device) -> Tuple[List[dict], List[dict]]:
    """Measure every requested mode on ``device``: (model infos, rows)."""
    memory = PeakMemory(device)
    load_before = _load_average()
    subjects = []
    for name, config, options in (('model', args.config, args.cfg_options),
                                  ('baseline', args.baseline, None)):
        if config is None:
            continue
        cfg, model = build_model(config, options, device)
        subject = Subject(name, config, cfg, model)
        if args.compile or args.amp or args.channels_last:
            from denseclip.engine.compiled_inference import \
                compile_for_inference
            compile_for_inference(model, mode=args.compile, amp=args.amp,
                                  channels_last=args.channels_last)
        subjects.append(subject)

    def others_held(row):
        return sum(s.held() for s in subjects if s.name != row['model'])

    rows = []
    for mode in args.modes:
        mode_rows = []
        for subject in subjects:
            if mode == 'train':
                mode_rows.append(train_row(subject, args, device))
            else:
                mode_rows += inference_rows(subject, mode, args, device)
        measure(mode_rows, args.iters, args.warmup, memory, others_held)
        rows += mode_rows
    for row in rows:
        del row['step']
    device_name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
                   else platform.processor() or platform.machine())
    infos = []
    for subject in subjects:
        config = osp.abspath(subject.config)
        if config.startswith(REPO + os.sep):
            config = osp.relpath(config, REPO)
        model = subject.model
        infos.append(dict(
            name=subject.name, config=config, model=type(model).__name__,
            params_m=sum(p.numel() for p in model.parameters()) / 1e6,
            num_classes=model.num_classes, device=str(device),
            device_name=device_name, threads=torch.get_num_threads(),
            torch=torch.__version__,
            cuda=torch.version.cuda if device.type == 'cuda' else None,
            peak_resettable=memory.resettable,
            load_average=(load_before, _load_average()), amp=args.amp,
            compile=args.compile, channels_last=args.channels_last))
    del subjects
    gc.collect()
    return infos, rows


def _load_average() -> Optional[float]:
    """The 1-minute load average (other jobs competing for the cores)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _num_crops(h, w, crop, stride) -> int:
    rows = max(h - crop[0] + stride[0] - 1, 0) // stride[0] + 1
    cols = max(w - crop[1] + stride[1] - 1, 0) // stride[1] + 1
    return rows * cols


def ratios(rows: List[dict], best: bool = False) -> List[Tuple[str, float]]:
    """The img/s ratios worth reading off a run: ours against the reference
    pipeline, the model against its baseline.
    From the median iterations, or with ``best`` the fastest ones (on a
    shared machine: the iterations least slowed by other load)."""
    out = []
    speed = 'best_img_per_s' if best else 'img_per_s'

    def find(**kw):
        return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]

    for mode in ('whole', 'slide', 'train'):
        ours = find(model='model', mode=mode, reference=False)
        cached = [r for r in ours if r['text_cache'] in (True, None)]
        if not cached:
            continue
        cached = cached[0]
        ref = find(model='model', mode=mode, reference=True)
        if ref:
            out.append((f'{mode} inference, ours vs the reference',
                        cached[speed] / ref[0][speed]))
        base = find(model='baseline', mode=mode)
        if base:
            out.append((f'{mode}: model vs baseline',
                        cached[speed] / base[0][speed]))
    return out


def print_table(infos: List[dict], rows: List[dict]) -> None:
    info = infos[0]
    for sub in infos:
        role = '' if sub['name'] == 'model' else ' (baseline)'
        print(f'\n{sub["config"]}{role}: {sub["model"]}, '
              f'{sub["params_m"]:.1f} M params, {sub["num_classes"]} '
              'classes, random weights')
    cuda = f', CUDA {info["cuda"]}' if info['cuda'] else ''
    extras = [name for name, on in (('amp', info['amp']),
                                    (f'compile={info["compile"]}',
                                     info['compile']),
                                    ('channels-last', info['channels_last']))
              if on]
    print(f'device {info["device"]} ({info["device_name"]}, '
          f'{info["threads"]} threads), torch {info["torch"]}{cuda}'
          + (f'; {", ".join(extras)}' if extras else ''))
    before, after = info['load_average']
    if before is not None:
        print(f'load average {before} before, {after} after (more than the '
              f'{info["threads"]} threads: other jobs shared the cores)')
    ge = '' if info['peak_resettable'] else '>='
    labels = [('[baseline] ' if r['model'] == 'baseline' else '') + r['label']
              for r in rows]
    width = max(len(label) for label in labels)
    print(f'{"":{width}s} {"input":>14s} {"img/s":>8s} {"s/iter":>8s} '
          f'{"best":>8s} {"cpu s":>8s} {"peak mem":>12s}')
    for label, row in zip(labels, rows):
        print(f'{label:{width}s} {row["input"]:>14s} '
              f'{row["img_per_s"]:8.3f} {row["s_per_iter"]:8.3f} '
              f'{row["s_min"]:8.3f} {row["cpu_s"]:8.2f} '
              f'{ge:>2s}{row["peak_bytes"] / 2**30:6.2f} GiB')
    print('(img/s, s/iter, cpu s: median iteration; best: fastest iteration)')
    if info['compile']:
        firsts = ', '.join(f'{row["label"]} {row["first_s"]:.1f} s'
                           for row in rows if row['mode'] != 'train'
                           and row['model'] == 'model')
        print(f'first forward (compiles): {firsts}')
    for (name, value), (_, best) in zip(ratios(rows), ratios(rows, True)):
        print(f'ratio, {name}: {value:.2f}x img/s (fastest iterations: '
              f'{best:.2f}x)')


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
                infos, rows = benchmark_device(args, device)
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
