"""An optimizer-wrapper constructor that puts parameters with equal settings in one group."""
from typing import Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

# optimizers whose torch implementation has fused and foreach variants
_MULTI_TENSOR = ('Adam', 'AdamW', 'SGD')
# devices torch's fused Adam/AdamW/SGD kernels run on
_FUSED_DEVICES = ('cuda', 'cpu', 'xpu', 'mps')


def _frozen(value):
    """A hashable stand-in for a param-group setting (lists -> tuples)."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value


def merge_param_groups(groups: List[dict]) -> List[dict]:
    """Merge param groups whose settings (every key but ``params``) are equal.

    Groups keep the order of their first member; parameters keep their order.
    Each parameter ends up with exactly the settings it had.
    """
    merged: Dict[tuple, dict] = {}
    for group in groups:
        key = tuple(sorted(
            (k, _frozen(v)) for k, v in group.items() if k != 'params'))
        if key not in merged:
            merged[key] = dict(group, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` with one param group per distinct
    setting instead of one per parameter.

    mmengine gives every parameter its own group once ``paramwise_cfg`` is set
    (DenseCLIP-R50: 289), and the optimizer launches its ``_foreach_``
    kernels per group. Groups of equal settings are merged here (each
    parameter keeps its lr, weight decay and frozen state), and Adam / AdamW
    / SGD get ``fused=True`` where torch supports it, else ``foreach=True``.
    Optimizer states of the two constructors do not resume into each other
    (docs/performance.md).
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None) -> None:
        if prefix:  # mmengine's recursion into submodules
            return super().add_params(params, module, prefix, is_dcn_module)
        groups: List[dict] = []
        super().add_params(groups, module, prefix, is_dcn_module)
        merged = merge_param_groups(groups)
        print_log(f'{type(self).__name__}: {len(groups)} parameters in '
                  f'{len(merged)} param groups', logger='current')
        params.extend(merged)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        optimizer_cfg = self.optimizer_cfg
        self.optimizer_cfg = self._with_implementation(optimizer_cfg, model)
        try:
            return super().__call__(model)
        finally:
            self.optimizer_cfg = optimizer_cfg

    @staticmethod
    def _with_implementation(optimizer_cfg: dict, model: nn.Module) -> dict:
        name = optimizer_cfg.get('type')
        name = name if isinstance(name, str) else getattr(name, '__name__', '')
        if (name not in _MULTI_TENSOR or 'fused' in optimizer_cfg
                or 'foreach' in optimizer_cfg):
            return optimizer_cfg
        params = [p for p in model.parameters() if p.requires_grad]
        fused = bool(params) and all(
            p.device.type in _FUSED_DEVICES and torch.is_floating_point(p)
            for p in params)
        cfg = optimizer_cfg.copy()
        cfg['fused' if fused else 'foreach'] = True
        return cfg
