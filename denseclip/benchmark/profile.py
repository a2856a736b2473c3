"""Where a benchmark row's time goes: ``torch.profiler`` over a few steps.

``tools/benchmark.py --profile N`` runs each row ``N`` more times under the
profiler and prints, per step: the wall time, the time the device was busy
(the union of its kernels' intervals) and idle, the number of kernels and
of host synchronisations, the top kernels, the largest idle gaps between
kernels (with the kernels on either side), and the time per region of the
model (its top-level modules, forward and backward, and the heads' losses).

On a CPU there are no kernels: the regions and top operators are CPU time.
"""
import contextlib
import gzip
import os
import os.path as osp
import shutil
import time
from collections import defaultdict
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn
from torch.autograd.profiler import record_function

REGION_PREFIX = 'region: '
# CUDA runtime calls that block the host until the device has caught up
SYNC_CALLS = ('cudaStreamSynchronize', 'cudaDeviceSynchronize',
              'cudaEventSynchronize', 'cudaMemcpy ', 'cudaMemcpy\0')
# (part of the model, its method, region label): the parts present get a
# region of their own; the innermost region an operator runs in wins
REGIONS = (
    ('backbone', 'forward', 'backbone'),
    ('', '_encode_text', 'text_encoder'),  # DenseCLIP's text path
    ('text_encoder', 'forward', 'text_encoder'),
    ('context_decoder', 'forward', 'context_decoder'),
    ('neck', 'forward', 'neck'),
    ('', '_decode_head_forward_train', 'decode_head.loss'),
    ('decode_head', 'forward', 'decode_head'),
    ('identity_head', 'loss', 'identity_head.loss'),
    ('', '_auxiliary_head_forward_train', 'auxiliary_head.loss'),
    ('auxiliary_head', 'forward', 'auxiliary_head'),
)


def _wrap(obj, name: str, label: str) -> Callable[[], None]:
    """Run ``obj.name`` inside ``record_function(label)``; returns undo."""
    original = getattr(obj, name)
    had_own = name in vars(obj)

    def wrapped(*args, **kwargs):
        with record_function(label):
            return original(*args, **kwargs)

    setattr(obj, name, wrapped)

    def undo():
        if had_own:
            setattr(obj, name, original)
        else:
            delattr(obj, name)

    return undo


@contextlib.contextmanager
def model_regions(model: nn.Module) -> Iterator[None]:
    """Label the model's parts (:data:`REGIONS`) for the profiler while
    inside."""
    undo = []
    try:
        for part, method, label in REGIONS:
            owner = getattr(model, part, None) if part else model
            if owner is None:
                continue
            owners = (list(owner) if isinstance(owner, nn.ModuleList)
                      else [owner])
            for i, obj in enumerate(owners):
                if callable(getattr(obj, method, None)):
                    name = label if len(owners) == 1 else f'{label}.{i}'
                    undo.append(_wrap(obj, method, REGION_PREFIX + name))
        yield
    finally:
        for fn in reversed(undo):
            fn()


def profile_step(step: Callable[[], None], steps: int, device: torch.device,
                 model: Optional[nn.Module] = None,
                 trace: Optional[str] = None):
    """Run ``step`` ``steps`` times under ``torch.profiler``; the profile.

    ``trace``: also write a Chrome trace there (gzipped when it ends in
    ``.gz``), readable in chrome://tracing or Perfetto.
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    sync = (lambda: torch.cuda.synchronize(device)) if (
        device.type == 'cuda') else (lambda: None)
    regions = model_regions(model) if model is not None else (
        contextlib.nullcontext())
    with regions:
        step()  # once unprofiled: the wrappers in place, caches warm
        sync()
        with profile(activities=activities) as prof:
            start = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            prof.wall_s = (time.perf_counter() - start) / steps
    if trace:
        _export_trace(prof, trace)
    return prof


def _export_trace(prof, path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not path.endswith('.gz'):
        prof.export_chrome_trace(path)
        return
    raw = path[:-3]
    prof.export_chrome_trace(raw)
    with open(raw, 'rb') as src, gzip.open(path, 'wb') as dst:
        shutil.copyfileobj(src, dst)
    os.remove(raw)


def _merged_length(intervals: List[Tuple[float, float]]) -> float:
    """Total length of the union of ``(start, end)`` intervals."""
    total, end = 0., float('-inf')
    for s, e in sorted(intervals):
        if s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def _is_backward_node(event) -> bool:
    """An autograd node's event (``MmBackward0`` ...): its sequence number
    is that of the forward operator it differentiates."""
    return getattr(event, 'sequence_nr', -1) >= 0 and 'Backward' in event.name


def _region_of(event, regions_by_seq: Dict[int, str]) -> Optional[str]:
    """The region an operator ran in: its own ancestors' label, or for a
    backward operator the region of the forward operator it belongs to."""
    node, seq = event, None
    while node is not None:
        if node.name.startswith(REGION_PREFIX):
            return node.name[len(REGION_PREFIX):]
        if seq is None and _is_backward_node(node):
            seq = node.sequence_nr
        node = node.cpu_parent
    if seq is not None and seq in regions_by_seq:
        return regions_by_seq[seq] + ' (backward)'
    return None


def _on_device(event) -> bool:
    """A kernel, copy or memset on the device (not a host operator)."""
    return event.device_type != torch.autograd.DeviceType.CPU


def summarize(prof, steps: int, top: int = 12, gaps: int = 8) -> dict:
    """Per-step figures of a profile from :func:`profile_step` (see the
    module's docstring). Times in milliseconds per step."""
    events = list(prof.events())
    # forward operators (with a sequence number) -> the region they ran in
    regions_by_seq: Dict[int, str] = {}
    for ev in events:
        seq = getattr(ev, 'sequence_nr', -1)
        if seq >= 0 and seq not in regions_by_seq and not (
                _is_backward_node(ev)):
            node = ev.cpu_parent
            while node is not None:
                if node.name.startswith(REGION_PREFIX):
                    regions_by_seq[seq] = node.name[len(REGION_PREFIX):]
                    break
                node = node.cpu_parent
    device_events = []  # (start us, end us, name)
    region_device = defaultdict(float)
    region_cpu = defaultdict(float)
    region_ops = defaultdict(int)  # operators called from Python
    syncs = 0
    for ev in events:
        if _on_device(ev):
            # a region's label also shows on the device's timeline (a user
            # annotation spanning its kernels): not a kernel
            if not ev.name.startswith(REGION_PREFIX):
                device_events.append((ev.time_range.start,
                                      ev.time_range.end, ev.name))
            continue
        if ev.name.startswith(SYNC_CALLS):
            syncs += 1
        if ev.name.startswith(REGION_PREFIX):
            continue
        region = _region_of(ev, regions_by_seq) or 'other'
        region_cpu[region] += ev.self_cpu_time_total
        # the kernels this operator launched itself (Kernel: name, device,
        # duration in us)
        region_device[region] += sum(k.duration for k in ev.kernels or ())
        parent = ev.cpu_parent
        if ev.name.startswith('aten::') and (
                parent is None or not parent.name.startswith('aten::')):
            region_ops[region] += 1
    out = dict(steps=steps, wall_ms=prof.wall_s * 1e3)
    if device_events:
        device_events.sort()
        busy = _merged_length([(s, e) for s, e, _ in device_events])
        by_name = defaultdict(lambda: [0., 0])
        for s, e, name in device_events:
            by_name[name][0] += e - s
            by_name[name][1] += 1
        gap_list = []
        end, before = device_events[0][1], device_events[0][2]
        for s, e, name in device_events[1:]:
            if s > end:
                gap_list.append((s - end, before, name))
            if e >= end:
                end, before = e, name
        gap_list.sort(reverse=True)
        out.update(
            device_busy_ms=busy / 1e3 / steps,
            device_idle_ms=max(prof.wall_s * 1e6 - busy / steps, 0) / 1e3,
            kernels_per_step=len(device_events) / steps,
            top_kernels=[
                dict(name=name, ms=t / 1e3 / steps, calls=n / steps,
                     share=t / busy if busy else 0.)
                for name, (t, n) in sorted(by_name.items(),
                                           key=lambda kv: -kv[1][0])[:top]],
            largest_gaps=[dict(us=g, prev=a, next=b)
                          for g, a, b in gap_list[:gaps]],
            gaps_over_20us_ms=sum(g for g, *_ in gap_list if g > 20) / 1e3
            / steps,
            region_device_ms={k: v / 1e3 / steps for k, v in sorted(
                region_device.items(), key=lambda kv: -kv[1]) if v > 0})
    out.update(
        host_syncs_per_step=syncs / steps,
        region_cpu_ms={k: v / 1e3 / steps for k, v in sorted(
            region_cpu.items(), key=lambda kv: -kv[1])},
        region_ops={k: v / steps for k, v in sorted(
            region_ops.items(), key=lambda kv: -kv[1])},
        top_cpu_ops=[
            dict(name=e.key, ms=e.self_cpu_time_total / 1e3 / steps,
                 calls=e.count / steps)
            for e in sorted(prof.key_averages(),
                            key=lambda e: -e.self_cpu_time_total)
            if not e.key.startswith(REGION_PREFIX)][:top])
    return out


def _short(name: str, width: int = 70) -> str:
    return name if len(name) <= width else name[:width - 3] + '...'


def print_profile(label: str, summary: dict) -> None:
    """The printed form of :func:`summarize`'s figures."""
    s = summary
    print(f'\nprofile: {label} ({s["steps"]} steps)')
    line = f'  wall {s["wall_ms"]:.2f} ms/step'
    if 'device_busy_ms' in s:
        line += (f'; device busy {s["device_busy_ms"]:.2f} ms, idle '
                 f'{s["device_idle_ms"]:.2f} ms '
                 f'({s["device_idle_ms"] / s["wall_ms"]:.0%}); '
                 f'{s["kernels_per_step"]:.0f} kernels; idle gaps > 20 us: '
                 f'{s["gaps_over_20us_ms"]:.2f} ms')
    line += f'; host syncs {s["host_syncs_per_step"]:.0f}/step'
    print(line)
    if 'region_device_ms' in s:
        print('  device time by region (ms/step): ' + ', '.join(
            f'{k} {v:.2f}' for k, v in s['region_device_ms'].items()))
    print('  CPU time by region (ms/step): ' + ', '.join(
        f'{k} {v:.2f}' for k, v in list(s['region_cpu_ms'].items())[:12]))
    print('  operators called per step by region: ' + ', '.join(
        f'{k} {v:.0f}' for k, v in list(s['region_ops'].items())[:12]))
    if s.get('top_kernels'):
        print('  top kernels (ms/step, calls/step, share of busy):')
        for k in s['top_kernels']:
            print(f'    {k["ms"]:8.3f} {k["calls"]:6.1f} {k["share"]:6.1%}  '
                  f'{_short(k["name"])}')
        print('  largest idle gaps (us: kernel before -> kernel after):')
        for g in s['largest_gaps']:
            print(f'    {g["us"]:8.0f}  {_short(g["prev"], 45)} -> '
                  f'{_short(g["next"], 45)}')
    print('  top CPU operators (self ms/step, calls/step):')
    for o in s['top_cpu_ops']:
        print(f'    {o["ms"]:8.3f} {o["calls"]:6.1f}  {_short(o["name"])}')
