"""Timing of the rows: warm-up, then the rows of a mode timed in turn."""
import statistics
import time
from typing import Callable, List

import torch

from .memory import PeakMemory


def measure(rows: List[dict], iters: int, warmup: int, memory: PeakMemory,
            others_held: Callable[[dict], int]) -> None:
    """Call ``row['step']`` ``warmup`` times untimed, then ``iters`` times
    timed, the rows in turn (A, B, A, B ...: load on the machine affects them
    alike); fills in each row's results.

    Speed is from the median call (robust to other load on the machine), and
    the fastest; ``cpu_s`` is the process's CPU time (all threads); peak
    memory is the highest over the timed calls, less ``others_held(row)``
    (what the other models hold). ``first_s``: the first warm-up call.
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
