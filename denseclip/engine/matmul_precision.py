"""float32 matrix products in TF32 on GPUs that have it, as convolutions are.

PyTorch runs float32 convolutions in TF32 on Ampere and later GPUs by
default (``torch.backends.cudnn.allow_tf32``) but not float32 matrix
products (``torch.backends.cuda.matmul.allow_tf32``, off since torch 1.12;
on in the torch 1.x the reference DenseCLIP trained with). A CLIP+FPN
baseline is all convolutions; DenseCLIP adds matrix products (the text
tower, the attention pool, the context decoder), which then run on the
SIMT units at a fraction of the tensor cores' rate: 12 ms of a 81 ms
training step on an H200 (docs/performance.md). ``env_cfg.matmul_tf32``
(our key; mmengine ignores it) makes both the same: True in
``configs/_base_/default_runtime.py``; False for full float32 products.
It changes nothing on a CPU.
"""
import contextlib
from typing import Iterator, Optional

import torch
from mmengine.logging import print_log

KEY = 'matmul_tf32'


def matmul_tf32_setting(cfg) -> Optional[bool]:
    """``cfg.env_cfg.matmul_tf32`` (None when the config does not say)."""
    value = (cfg.get('env_cfg') or {}).get(KEY)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f'env_cfg.{KEY} must be True or False, got '
                         f'{value!r}')
    return value


def apply_matmul_tf32(cfg) -> None:
    """Set ``torch.backends.cuda.matmul.allow_tf32`` from the config for
    the rest of the process (a script's own runs; the tools scope it with
    :func:`matmul_tf32_of`)."""
    value = matmul_tf32_setting(cfg)
    if value is not None:
        torch.backends.cuda.matmul.allow_tf32 = value


@contextlib.contextmanager
def matmul_tf32_of(cfg) -> Iterator[None]:
    """What ``tools/train.py`` / ``tools/test.py`` run inside: the config's
    setting, said in the log on a GPU, the previous one restored after
    (a tool called from Python, e.g. by the tests, leaves no trace)."""
    value = matmul_tf32_setting(cfg)
    if value is not None and torch.cuda.is_available():
        print_log(f'float32 matrix products: '
                  f'{"TF32" if value else "full float32"} '
                  f'(env_cfg.{KEY}={value})', logger='current')
    with matmul_tf32(value):
        yield


@contextlib.contextmanager
def matmul_tf32(value: Optional[bool]) -> Iterator[None]:
    """Inside: ``allow_tf32`` set to ``value`` (None: left as it is)."""
    before = torch.backends.cuda.matmul.allow_tf32
    if value is not None:
        torch.backends.cuda.matmul.allow_tf32 = value
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
