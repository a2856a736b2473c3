"""The last block of a CLIP ViT, rewired for dense prediction.

MaskCLIP and its training-free successors change only the last transformer
block of a CLIP ViT; each is one row of ``(attention, residual, FFN)``, then
``ln_post`` (and the head's ``proj``) on the patch tokens. With
``q, k, v = in_proj(ln_1(x))`` split into heads and ``s = head_dim ** -0.5``:

==============  ======================================  ========  =====
mode            attention output (per head)             residual  FFN
==============  ======================================  ========  =====
``maskclip``    ``v``                                   yes       yes
``sclip``       ``(softmax(q q^T s) + softmax(k k^T s)) v``  yes  yes
``clearclip``   ``softmax(q q^T s) v``                  no        no
``naclip``      ``softmax(k k^T s + Omega) v``          no        no
``vanilla``     ``softmax(q k^T s) v`` (CLIP itself)    yes       yes
==============  ======================================  ========  =====

``out_proj`` follows the attention; ``residual`` adds the block input,
``ffn`` adds ``mlp(ln_2(.))``. Both switches can be set against a mode's
default (ClearCLIP's code runs MaskCLIP without them). NACLIP's ``Omega`` is
a Gaussian over the patch grid, ``exp(-d_ij^2 / (2 std^2))``, zero on the
class token's row and column; it is built once per grid size.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...clip.attention_heads import merge_heads, split_heads

# mode -> (residual, ffn) as each method's official code runs it
DENSE_MODES: Dict[str, Tuple[bool, bool]] = {
    'maskclip': (True, True),
    'sclip': (True, True),
    'clearclip': (False, False),
    'naclip': (False, False),
    'vanilla': (True, True),
}


def neighbourhood_bias(grid: Tuple[int, int], std: float,
                       device: Optional[torch.device] = None,
                       dtype: torch.dtype = torch.float32) -> Tensor:
    """NACLIP's ``Omega`` ``[1 + H*W, 1 + H*W]``: ``exp(-d^2 / (2 std^2))``
    between patch positions (row-major), zero for the class token."""
    h, w = grid
    rows = torch.arange(h, device=device, dtype=torch.float32)
    cols = torch.arange(w, device=device, dtype=torch.float32)
    pos = torch.stack(torch.meshgrid(rows, cols, indexing='ij'), -1).view(-1, 2)
    dist2 = (pos[:, None] - pos[None]).pow(2).sum(-1)
    omega = torch.zeros(h * w + 1, h * w + 1, device=device)
    omega[1:, 1:] = torch.exp(-dist2 / (2 * std**2))
    return omega.to(dtype)


class DenseLastBlock(nn.Module):
    """Runs a CLIP ViT's last block the way a dense method does.

    Args:
        mode: one of :data:`DENSE_MODES`.
        residual, ffn: override the mode's residual connection / FFN
            (None: the mode's own).
        gaussian_std: width of NACLIP's neighbourhood, in patches.
    """

    def __init__(self,
                 mode: str = 'maskclip',
                 residual: Optional[bool] = None,
                 ffn: Optional[bool] = None,
                 gaussian_std: float = 5.0):
        super().__init__()
        if mode not in DENSE_MODES:
            raise ValueError(f'dense last block: unknown mode {mode!r}; '
                             f'valid modes: {", ".join(DENSE_MODES)}')
        if gaussian_std <= 0:
            raise ValueError(f'dense last block: gaussian_std must be > 0, '
                             f'got {gaussian_std}')
        default_residual, default_ffn = DENSE_MODES[mode]
        self.mode = mode
        self.residual = default_residual if residual is None else residual
        self.ffn = default_ffn if ffn is None else ffn
        self.gaussian_std = gaussian_std
        self._bias_cache: Dict[tuple, Tensor] = {}

    def extra_repr(self) -> str:
        extra = (f', gaussian_std={self.gaussian_std}'
                 if self.mode == 'naclip' else '')
        return (f'mode={self.mode!r}, residual={self.residual}, '
                f'ffn={self.ffn}{extra}')

    def bias(self, grid: Tuple[int, int], like: Tensor) -> Tensor:
        """NACLIP's ``Omega`` for this grid, from the cache."""
        key = (tuple(grid), like.device, like.dtype)
        if key not in self._bias_cache:
            self._bias_cache[key] = neighbourhood_bias(
                grid, self.gaussian_std, like.device, like.dtype)
        return self._bias_cache[key]

    def attend(self, q: Tensor, k: Tensor, v: Tensor,
               grid: Tuple[int, int]) -> Tensor:
        """The mode's attention of per-head ``[B, h, L, d]`` tensors."""
        sdpa = F.scaled_dot_product_attention  # scale head_dim ** -0.5
        if self.mode == 'maskclip':
            return v
        if self.mode == 'vanilla':
            return sdpa(q, k, v)
        if self.mode == 'clearclip':
            return sdpa(q, q, v)
        if self.mode == 'sclip':
            return sdpa(q, q, v) + sdpa(k, k, v)
        return sdpa(k, k, v, attn_mask=self.bias(grid, q))  # naclip

    def forward(self, block: nn.Module, x: Tensor,
                grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Tokens ``[B, 1 + H*W, C]`` after ``block`` run in this mode, and
        the block's attention keys ``[B, 1 + H*W, C]``.

        ``block`` is a ``ResidualAttentionBlock`` (OpenAI's parameters);
        ``x`` its input.
        """
        q, k, v = block.qkv(x)
        attn = block.attn
        heads = attn.num_heads
        out = self.attend(split_heads(q, heads), split_heads(k, heads),
                          split_heads(v, heads), grid)
        out = F.linear(merge_heads(out), attn.out_proj.weight,
                       attn.out_proj.bias)
        y = x + out if self.residual else out
        if self.ffn:
            y = y + block.mlp(block.ln_2(y))
        return y, k

