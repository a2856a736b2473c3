"""Mixed-precision training on any device: bfloat16 where it is supported, float16 with loss scaling otherwise."""
import logging
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn

AMP_WRAPPERS = ('AmpOptimWrapper', 'MixedPrecisionOptimWrapper')


def amp_dtype(dtype: Union[str, torch.dtype], device: torch.device
              ) -> torch.dtype:
    """The autocast dtype for ``dtype`` (``'auto'``, ``'bfloat16'``,
    ``'float16'`` or a torch dtype) on ``device``.

    ``'auto'``: bfloat16 on the CPU and on GPUs that support it (Ampere and
    later), float16 elsewhere.
    """
    if dtype == 'auto':
        if device.type == 'cpu' or (device.type == 'cuda'
                                    and torch.cuda.is_bf16_supported()):
            return torch.bfloat16
        return torch.float16
    if isinstance(dtype, str):
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"MixedPrecisionOptimWrapper: dtype must be "
                             f"'auto', 'bfloat16' or 'float16', got {dtype!r}")
        dtype = getattr(torch, dtype)
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f'MixedPrecisionOptimWrapper: dtype must be '
                         f'bfloat16 or float16, got {dtype}')
    if (dtype == torch.bfloat16 and device.type == 'cuda'
            and not torch.cuda.is_bf16_supported()):
        raise ValueError(f'MixedPrecisionOptimWrapper: {device} does not '
                         "support bfloat16; use dtype='float16' or 'auto'")
    return dtype


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward and loss run under ``torch.autocast``.

    Unlike mmengine's ``AmpOptimWrapper`` (float16 + ``GradScaler`` by
    default, GPUs only) it runs on the CPU too and picks the dtype per
    device: bfloat16 needs no loss scaling; float16 gets a ``GradScaler``
    (``loss_scale``: ``'dynamic'``, a fixed float, or ``GradScaler`` kwargs).
    The device is that of the optimizer's first parameter. Modules that need
    float32 switch autocast off themselves (DenseCLIP's text encoder, score
    map and ``gamma`` residual, every loss of the separable loss path).

    Args:
        optimizer: the optimizer.
        dtype: ``'auto'`` (default), ``'bfloat16'`` or ``'float16'``.
        loss_scale: float16 loss scaling, see above; unused for bfloat16.
        **kwargs: ``OptimWrapper``'s (``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, optimizer, dtype: Union[str, torch.dtype] = 'auto',
                 loss_scale: Union[str, float, dict] = 'dynamic', **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        device = next((p.device for group in self.optimizer.param_groups
                       for p in group['params']), torch.device('cpu'))
        self.device_type = device.type
        self.cast_dtype = amp_dtype(dtype, device)
        self.loss_scaler = None
        self._scale_update_param = None
        if self.cast_dtype == torch.float16:
            if loss_scale == 'dynamic':
                self.loss_scaler = torch.amp.GradScaler(device.type)
            elif isinstance(loss_scale, (int, float)):
                self._scale_update_param = float(loss_scale)
                self.loss_scaler = torch.amp.GradScaler(
                    device.type, init_scale=float(loss_scale))
            elif isinstance(loss_scale, dict):
                self.loss_scaler = torch.amp.GradScaler(device.type,
                                                        **loss_scale)
            else:
                raise TypeError("MixedPrecisionOptimWrapper: loss_scale must "
                                "be 'dynamic', a float or a dict, got "
                                f'{loss_scale!r}')

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return super().step(**kwargs)
        if self.clip_grad_kwargs:
            self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.loss_scaler is not None:
            state['loss_scaler'] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        scaler_state = state_dict.pop('loss_scaler', None)
        if scaler_state is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler_state)
        if 'base_param_settings' in state_dict:
            self.base_param_settings = state_dict.pop('base_param_settings')
        self.optimizer.load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
                self.device_type, dtype=self.cast_dtype):
            yield


def enable_amp(cfg) -> None:
    """What ``tools/train.py --amp`` does to a config: an ``OptimWrapper``
    becomes a ``MixedPrecisionOptimWrapper(dtype='auto')``."""
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in AMP_WRAPPERS:
        print_log('AMP training is already enabled in your config.',
                  logger='current', level=logging.WARNING)
        return
    if kind != 'OptimWrapper':
        raise ValueError(
            f'--amp needs optim_wrapper.type OptimWrapper, got {kind}')
    wrapper.type = 'MixedPrecisionOptimWrapper'
    wrapper.setdefault('dtype', 'auto')
