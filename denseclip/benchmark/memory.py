"""Peak memory of one measurement, and the bytes a model and its optimizer hold."""
import re
import resource
import sys
from typing import Optional

import torch
from torch import nn


class PeakMemory:
    """Peak memory (bytes) on ``device`` since the last :meth:`reset`.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the process's peak
    resident set size (Linux ``VmHWM``, reset through
    ``/proc/self/clear_refs``); where that cannot be reset
    (``resettable`` False), ``getrusage``'s maxrss, which never goes down.
    """

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
            with open('/proc/self/status') as f:
                status = f.read()
            return int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) * 1024
        except (OSError, AttributeError):
            scale = 1 if sys.platform == 'darwin' else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def held_bytes(model: nn.Module, optim: Optional[object] = None) -> int:
    """Bytes of ``model``'s parameters and buffers and of the state of
    ``optim`` (an mmengine ``OptimWrapper``), each storage counted once."""
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
