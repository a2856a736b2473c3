"""A module's training forward and backward replayed from CUDA graphs.

DenseCLIP's text path (12 transformer layers over 150 class names) and
context decoder launch about 1,600 small kernels per training step, forward
and backward, where its CLIP+FPN baseline launches about 1,100 in all; on a
GPU the host cannot launch them as fast as the device runs them (an H200
step of batch 8 idled 19 ms of 107 under the profiler, docs/performance.md).
``torch.cuda.make_graphed_callables`` captures a module's forward and
backward once and replays each as one launch.

A graph replays fixed work on fixed memory, so one is kept per call
signature: the inputs' shapes, dtypes and ``requires_grad``, the module's
mode, the autocast state, TF32, and where its parameters live (a model
moved or reloaded into new storage gets new graphs; optimizer steps update
parameters in place, which graphs see). Outside those conditions (a CPU,
no gradient, hooks on the module, another capture or a compilation under
way) the module is simply called.
"""
import warnings
from collections import OrderedDict
from typing import Callable, Hashable, Optional, Tuple

import torch
from torch import Tensor, nn


class _Holder(nn.Module):
    """What is handed to ``make_graphed_callables``, which replaces the
    ``forward`` of the module it is given: this holder's, not the model's."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.inner = module

    def forward(self, *args: Tensor) -> Tensor:
        return self.inner(*args)


def _has_hooks(module: nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
               or getattr(m, '_backward_pre_hooks', None)
               for m in module.modules())


class CudaGraphedCall:
    """Calls ``module(*args)``, in training on a GPU through CUDA graphs.

    Args:
        name: what the module is, for the warning if a capture fails (the
            call then runs eagerly from there on).
        max_graphs: graphs kept (each holds its own memory); the least
            recently used one is dropped beyond it.
    """

    def __init__(self, name: str, max_graphs: int = 4):
        self.name = name
        self.max_graphs = max_graphs
        self.enabled = True
        self._graphs: 'OrderedDict[Hashable, Callable]' = OrderedDict()

    def __len__(self) -> int:
        return len(self._graphs)

    def clear(self) -> None:
        self._graphs.clear()

    def usable(self, module: nn.Module, args: Tuple[Tensor, ...]) -> bool:
        """Whether this call can go through a graph."""
        return (self.enabled and torch.is_grad_enabled() and len(args) > 0
                and all(isinstance(a, Tensor) and a.is_cuda for a in args)
                and (any(a.requires_grad for a in args) or any(
                    p.requires_grad for p in module.parameters()))
                and not torch.cuda.is_current_stream_capturing()
                and not torch.compiler.is_compiling()
                and not _has_hooks(module))

    def key(self, module: nn.Module, args: Tuple[Tensor, ...],
            extra: Hashable = ()) -> Hashable:
        device = args[0].device
        return (tuple((a.shape, a.dtype, a.requires_grad, a.device)
                      for a in args),
                module.training,
                torch.is_autocast_enabled(device.type),
                torch.get_autocast_dtype(device.type),
                torch.backends.cuda.matmul.allow_tf32,
                torch.backends.cudnn.allow_tf32,
                tuple(p.data_ptr() for p in module.parameters()),
                tuple(p.requires_grad for p in module.parameters()),
                extra)

    def __call__(self, module: nn.Module, *args: Tensor,
                 extra_key: Hashable = ()) -> Tensor:
        """``module(*args)``; ``extra_key``: what else the module reads
        that a graph fixes (e.g. a token tensor's ``data_ptr``)."""
        if not self.usable(module, args):
            return module(*args)
        key = self.key(module, args, extra_key)
        graphed = self._graphs.get(key)
        if graphed is None:
            graphed = self._capture(module, args)
            if graphed is None:
                return module(*args)
            self._graphs[key] = graphed
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        return graphed(*args)

    def _capture(self, module: nn.Module,
                 args: Tuple[Tensor, ...]) -> Optional[Callable]:
        device = args[0].device
        samples = tuple(a.detach().clone().requires_grad_(a.requires_grad)
                        for a in args)
        # autocast as the call has it, without its weight cache (which
        # make_graphed_callables refuses: a cached cast would be captured)
        autocast = torch.autocast(
            device.type, dtype=torch.get_autocast_dtype(device.type),
            enabled=torch.is_autocast_enabled(device.type),
            cache_enabled=False)
        try:
            with torch.cuda.device(device), autocast:
                return torch.cuda.make_graphed_callables(
                    _Holder(module), samples)
        except Exception as err:  # an op that cannot be captured, ...
            self.enabled = False
            self._graphs.clear()
            warnings.warn(f'{self.name}: CUDA graph capture failed, running '
                          f'it eagerly from now on ({type(err).__name__}: '
                          f'{err})')
            return None
