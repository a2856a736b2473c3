"""CLIP's text tower (OpenAI keys), registered as ``CLIPTextTower``.

The reference DenseCLIP calls this module ``CLIPTextEncoder``; mmseg 1.x
already registers a different ``CLIPTextEncoder`` (SAN's), which we leave in
place, so the plain tower has its own name here.
"""
from typing import List, Optional

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..utils.legacy_args import drop_legacy_args
from .activation import QUICK_GELU, check_activation
from .tower import CLIPTower
from .transformer import LayerNorm, Transformer


@MODELS.register_module()
class CLIPTextTower(CLIPTower):
    """CLIP's causal text transformer: tokens ``[K, L]`` -> features ``[K, embed_dim]``.

    The feature of a text is the projected output at its end-of-text token
    (the highest token id, so ``argmax`` finds it).

    Args:
        context_length: token positions; a CLIP file's 77 positional
            embeddings are cut to this length on loading.
        vocab_size, transformer_width, transformer_heads, transformer_layers,
            embed_dim: CLIP's text tower shape (RN50: 512/8/12, embed 1024).
        pretrained: a CLIP file (any layout) whose text tensors are loaded.
        activation: ``'quick_gelu'``, ``'gelu'`` or None (default: what the
            CLIP file states, else the table of known files, else QuickGELU;
            :mod:`denseclip.clip.activation`). A value the file contradicts
            is an error.
    """

    clip_tower = 'text'
    heads_arg = 'transformer_heads'
    activation_arg = 'activation'

    def __init__(self,
                 context_length: int = 77,
                 vocab_size: int = 49408,
                 transformer_width: int = 512,
                 transformer_heads: int = 8,
                 transformer_layers: int = 12,
                 embed_dim: int = 1024,
                 pretrained: Optional[str] = None,
                 activation: Optional[str] = None,
                 init_cfg=None,
                 **legacy):
        drop_legacy_args(type(self).__name__, legacy)
        super().__init__(pretrained=pretrained, init_cfg=init_cfg)
        self.activation = check_activation(activation, type(self).__name__)
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.transformer = Transformer(
            transformer_width, transformer_layers, transformer_heads,
            causal=True, activation=activation or QUICK_GELU)
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(
            torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(
            torch.empty(transformer_width, embed_dim))
        # CLIP's initialize_parameters for the text tower
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=transformer_width**-0.5)
        self.transformer.init_clip_weights()

    def encode(self, x: Tensor, eot_index: Tensor) -> Tensor:
        """Run embedded tokens ``[N, L, C]`` through the tower; read ``eot_index``."""
        length = x.shape[1]
        if length > self.context_length:
            raise ValueError(f'{type(self).__name__}: {length} tokens exceed '
                             f'the context length {self.context_length}')
        x = x + self.positional_embedding[:length].to(x.dtype)
        x = self.ln_final(self.transformer(x))
        x = x[torch.arange(x.shape[0], device=x.device), eot_index]
        return x @ self.text_projection

    def forward(self, text: Tensor) -> Tensor:
        return self.encode(self.token_embedding(text), text.argmax(dim=-1))

    def adapt_clip_state_dict(self, state_dict: dict) -> List[str]:
        key = 'positional_embedding'
        if key in state_dict and state_dict[key].shape[0] > self.context_length:
            state_dict[key] = state_dict[key][:self.context_length]
            return [key]
        return []
