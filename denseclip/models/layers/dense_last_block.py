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
``scclip``      SC-CLIP (:mod:`.self_calibrated_block`)  no       no
``proxyclip``   ProxyCLIP (:mod:`.proxy_attention`)     no        no
==============  ======================================  ========  =====

``out_proj`` follows the attention; ``residual`` adds the block input,
``ffn`` adds ``mlp(ln_2(.))``. Both switches can be set against a mode's
default (ClearCLIP's code runs MaskCLIP without them). NACLIP's ``Omega`` is
a Gaussian over the patch grid, ``exp(-d_ij^2 / (2 std^2))``, zero on the
class token's row and column; it is built once per grid size.

``anomaly_tokens`` (SC-CLIP's anomaly-token resolution,
:mod:`.anomaly_tokens`) works with every mode: the patch tokens of the last
block's input whose local outlier factor stands out are replaced by their
grid neighbours' mean before the block runs (on by default in ``scclip``
only). ``scclip`` reads intermediate block outputs
(:attr:`DenseLastBlock.intermediate_layers`, given to :meth:`forward`).
``proxyclip`` reads a vision foundation model's patch features (``proxy``,
given to :meth:`forward`): its tokens come out on that model's patch grid.
"""
from typing import Dict, Optional, Set, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...clip.attention_heads import merge_heads, split_heads
from .anomaly_tokens import AnomalyTokenResolver
from .proxy_attention import PROXY_BETA, PROXY_GAMMA, ProxyAttention
from .self_calibrated_block import (ANOMALY_DEFAULTS, OptionSpec,
                                    SelfCalibratedBlock)

# mode -> (residual, ffn) as each method's official code runs it
DENSE_MODES: Dict[str, Tuple[bool, bool]] = {
    'maskclip': (True, True),
    'sclip': (True, True),
    'clearclip': (False, False),
    'naclip': (False, False),
    'vanilla': (True, True),
    'scclip': (False, False),
    'proxyclip': (False, False),
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
        anomaly_tokens: resolve the anomaly tokens of the block's input:
            ``dict(n_neighbors=30, contamination=0.05)``, True (those
            values, SC-CLIP's) or False; None: on in ``scclip`` only.
        self_adjust, fusion, cls_weight: ``scclip``'s parts
            (:class:`~.self_calibrated_block.SelfCalibratedBlock`; None:
            SC-CLIP's values for the tower's depth, False: off).
        beta, gamma: ``proxyclip``'s adaptive normalisation and masking
            (:class:`~.proxy_attention.ProxyAttention`; None: ProxyCLIP's
            1.2 and 3.0).

    A tower calls :meth:`bind_depth` with its number of blocks.
    """

    def __init__(self,
                 mode: str = 'maskclip',
                 residual: Optional[bool] = None,
                 ffn: Optional[bool] = None,
                 gaussian_std: float = 5.0,
                 anomaly_tokens: OptionSpec = None,
                 self_adjust: OptionSpec = None,
                 fusion: OptionSpec = None,
                 cls_weight: Optional[float] = None,
                 beta: Optional[float] = None,
                 gamma: Optional[float] = None):
        super().__init__()
        if mode not in DENSE_MODES:
            raise ValueError(f'dense last block: unknown mode {mode!r}; '
                             f'valid modes: {", ".join(DENSE_MODES)}')
        if mode == 'scclip' and (residual or ffn):
            raise ValueError('dense last block: scclip has no residual and '
                             'no FFN (its class token is added as '
                             'cls_weight); leave residual and ffn unset')
        if mode != 'scclip' and (self_adjust is not None or
                                 fusion is not None or cls_weight is not None):
            raise ValueError(f'dense last block: self_adjust, fusion and '
                             f'cls_weight are scclip\'s; mode is {mode!r}')
        if mode != 'proxyclip' and (beta is not None or gamma is not None):
            raise ValueError(f'dense last block: beta and gamma are '
                             f'proxyclip\'s; mode is {mode!r}')
        if mode == 'proxyclip' and (residual or ffn):
            raise ValueError('dense last block: proxyclip has no residual '
                             'and no FFN, as ProxyCLIP runs it; leave '
                             'residual and ffn unset')
        if gaussian_std <= 0:
            raise ValueError(f'dense last block: gaussian_std must be > 0, '
                             f'got {gaussian_std}')
        default_residual, default_ffn = DENSE_MODES[mode]
        self.mode = mode
        self.residual = default_residual if residual is None else residual
        self.ffn = default_ffn if ffn is None else ffn
        self.gaussian_std = gaussian_std
        self._bias_cache: Dict[tuple, Tensor] = {}
        if anomaly_tokens is None:
            anomaly_tokens = mode == 'scclip'
        if anomaly_tokens is True:
            anomaly_tokens = dict(ANOMALY_DEFAULTS)
        if anomaly_tokens is not False and not isinstance(anomaly_tokens,
                                                          dict):
            raise TypeError(f'dense last block: anomaly_tokens must be None, '
                            f'a bool or a dict, got {anomaly_tokens!r}')
        self.anomaly_tokens = (AnomalyTokenResolver(**anomaly_tokens)
                               if anomaly_tokens is not False else None)
        self.scclip = (SelfCalibratedBlock(self_adjust, fusion, cls_weight)
                       if mode == 'scclip' else None)
        self.proxy_attention = (ProxyAttention(
            PROXY_BETA if beta is None else beta,
            PROXY_GAMMA if gamma is None else gamma)
            if mode == 'proxyclip' else None)

    def bind_depth(self, layers: int) -> None:
        """Settings that depend on the ViT's number of blocks (scclip's
        layers)."""
        if self.scclip is not None:
            self.scclip.bind_depth(layers)

    @property
    def intermediate_layers(self) -> Set[int]:
        """Blocks (from 0) whose outputs :meth:`forward` needs."""
        return self.scclip.intermediate_layers if self.scclip else set()

    def extra_repr(self) -> str:
        extra = (f', gaussian_std={self.gaussian_std}'
                 if self.mode == 'naclip' else '')
        if self.anomaly_tokens is not None:
            extra += ', anomaly_tokens=on'
        if self.proxy_attention is not None:
            extra += f', {self.proxy_attention.extra_repr()}'
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

    @property
    def needs_proxy(self) -> bool:
        """Whether :meth:`forward` needs a vision foundation model's patch
        features (``proxyclip``)."""
        return self.proxy_attention is not None

    def forward(self, block: nn.Module, x: Tensor, grid: Tuple[int, int],
                intermediates: Optional[Dict[int, Tensor]] = None,
                proxy: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Tokens ``[B, 1 + H*W, C]`` after ``block`` run in this mode, and
        the block's attention keys ``[B, 1 + H*W, C]``.

        ``block`` is a ``ResidualAttentionBlock`` (OpenAI's parameters);
        ``x`` its input; ``intermediates`` the outputs of the blocks
        :attr:`intermediate_layers` by index; ``proxy`` a vision foundation
        model's patch features ``[B, C', H', W']`` (``proxyclip``, whose
        tokens are then ``[B, 1 + H'*W', C]`` on that grid; the first is the
        class token's input, which no method here reads).
        """
        anomalies = None
        if self.anomaly_tokens is not None:
            patches, anomalies = self.anomaly_tokens(x[:, 1:], grid)
            x = torch.cat([x[:, :1], patches], 1)
        if self.scclip is not None:
            return self.scclip(block, x, grid, intermediates or {}, anomalies)
        q, k, v = block.qkv(x)
        if self.proxy_attention is not None:
            if proxy is None:
                raise ValueError(
                    "dense last block: mode 'proxyclip' needs a vision "
                    'foundation model\'s patch features: set model.vfm '
                    '(TrainingFreeSegmentor) or pass proxy_features')
            out = self.proxy_attention(proxy, v[:, 1:], grid)
            out = F.linear(out, block.attn.out_proj.weight,
                           block.attn.out_proj.bias)
            return torch.cat([x[:, :1], out], 1), k
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
