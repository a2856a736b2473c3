"""Multi-head attention's head split and merge, written once.

``[B, L, C]`` tokens become ``[B, heads, L, C // heads]`` for
``F.scaled_dot_product_attention`` (or an explicit attention matrix) and back.
"""
from torch import Tensor


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[B, L, C]`` -> ``[B, heads, L, C // heads]``."""
    B, L, C = x.shape
    if C % heads:
        raise ValueError(f'width {C} is not divisible by {heads} heads')
    return x.reshape(B, L, heads, C // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``[B, heads, L, d]`` -> ``[B, L, heads * d]``."""
    B, heads, L, d = x.shape
    return x.transpose(1, 2).reshape(B, L, heads * d)
