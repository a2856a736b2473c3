"""DenseCLIP's prompted class names through CLIP's text tower, the shared prefix computed once.

Every class sequence starts with the same ``1 + N`` tokens, ``[sot, ctx_1 ..
ctx_N]``, and CLIP's text transformer is causal: the hidden states of those
positions depend on nothing after them, so in every layer they are the same
for all ``K`` classes. :func:`encode_with_shared_prefix` runs them once per
context set and only the ``L_name - 1`` name positions per class, which
attend to the prefix's keys and values and to their own. With DenseCLIP's 8
contexts and 5-token names that is 9 + 150 x 4 token positions instead of
150 x 13: the text encoder's forward and backward (the contexts' gradient
flows through it) cost a third. The result equals
``CLIPTextContextEncoder.forward`` up to float32 rounding (the same
operations, batched differently; ``tests/test_shared_prefix_encoding.py``).
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...clip.attention_heads import merge_heads, split_heads
from .clip_text_context_encoder import CLIPTextContextEncoder


def _supports_shared_prefix(encoder: nn.Module) -> bool:
    """The tower is ours, unhooked, its blocks plain pre-norm attention."""
    if (type(encoder) is not CLIPTextContextEncoder
            or encoder._forward_pre_hooks or encoder._forward_hooks
            or 'forward' in vars(encoder)):  # hooked, or forward replaced
        return False
    transformer = encoder.transformer
    return transformer.causal and all(
        isinstance(block.drop_path, nn.Identity)
        and block.attn._qkv_same_embed_dim and block.attn.batch_first
        and not block._forward_hooks and not block._forward_pre_hooks
        for block in transformer.resblocks)


def _attention(block: nn.Module, q: Tensor, k: Tensor, v: Tensor,
               mask: Tensor) -> Tensor:
    """``block.attn``'s multi-head attention of ``q`` over ``k``/``v``
    (projected already, ``[B, L, C]``), through its output projection."""
    heads = block.attn.num_heads
    out = F.scaled_dot_product_attention(
        split_heads(q, heads), split_heads(k, heads), split_heads(v, heads),
        attn_mask=mask)
    return block.attn.out_proj(merge_heads(out))


def encode_with_shared_prefix(encoder: nn.Module, text: Tensor,
                              context: Tensor) -> Tensor:
    """``encoder(text, context)``, the ``[sot] + contexts`` prefix run once.

    Args:
        encoder: a ``CLIPTextContextEncoder``; any other module (or one with
            hooks or stochastic depth) is simply called.
        text: name tokens ``[K, L_name]`` (start, name, end, padding).
        context: contexts ``[B, N, C]``.

    Returns:
        Tensor: text features ``[B, K, embed_dim]``.
    """
    if not _supports_shared_prefix(encoder):
        return encoder(text, context)
    K, name_length = text.shape
    B, N, C = context.shape
    if name_length + N != encoder.context_length:
        return encoder(text, context)  # let the encoder raise its error
    tokens = encoder.token_embedding(text)  # K, L_name, C
    pos = encoder.positional_embedding
    prefix_len = 1 + N
    tail_len = name_length - 1
    # [sot] + contexts, once per context set: [B, 1 + N, C]
    prefix = torch.cat([tokens[:1, :1].expand(B, 1, C),
                        context.to(tokens.dtype)], dim=1)
    prefix = prefix + pos[:prefix_len].to(prefix.dtype)
    # the name positions of every class: [B * K, L_name - 1, C]
    tail = tokens[:, 1:] + pos[prefix_len:].to(tokens.dtype)
    tail = tail.unsqueeze(0).expand(B, K, tail_len, C).reshape(
        B * K, tail_len, C)
    device = tokens.device
    prefix_mask = torch.ones(prefix_len, prefix_len, dtype=torch.bool,
                             device=device).tril_()
    # a name position sees the whole prefix and the name positions up to it
    tail_mask = torch.cat([
        torch.ones(tail_len, prefix_len, dtype=torch.bool, device=device),
        torch.ones(tail_len, tail_len, dtype=torch.bool,
                   device=device).tril_()
    ], dim=1)
    for block in encoder.transformer.resblocks:
        q_p, k_p, v_p = block.qkv(prefix)
        q_t, k_t, v_t = block.qkv(tail)

        def with_prefix(shared: Tensor, own: Tensor) -> Tensor:
            shared = shared.unsqueeze(1).expand(B, K, prefix_len, C)
            return torch.cat([shared.reshape(B * K, prefix_len, C), own],
                             dim=1)

        prefix = prefix + _attention(block, q_p, k_p, v_p, prefix_mask)
        tail = tail + _attention(block, q_t, with_prefix(k_p, k_t),
                                 with_prefix(v_p, v_t), tail_mask)
        prefix = prefix + block.mlp(block.ln_2(prefix))
        tail = tail + block.mlp(block.ln_2(tail))
    # the end-of-text token is a name position: text index - 1 in the tail
    eot = text.argmax(dim=-1).repeat(B) - 1
    feats = encoder.ln_final(tail[torch.arange(B * K, device=device), eot])
    return (feats @ encoder.text_projection).reshape(B, K, -1)
