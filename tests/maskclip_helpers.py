"""MaskCLIP test helpers: toy MaskCLIP models, and references computed from
:class:`denseclip.toy.clip_model.OpenAICLIP`'s own modules (never from our code)."""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import tokenize as mmseg_tokenize
from torch import Tensor

from denseclip.apis import maskclip_model_cfg

NAMES = ['sky', 'red car', 'tree', 'café au lait']


def toy_maskclip_cfg(clip, names=NAMES, cache_dir=None, **head):
    """MaskCLIP config for a toy CLIP fixture (arch read from its file)."""
    cfg = maskclip_model_cfg(
        clip.jit, names, templates=head.pop('templates', 'single'),
        # the toy text towers have 4 heads, not OpenAI's width // 64
        text_encoder=dict(transformer_heads=clip.shape['transformer_heads']),
        text_cache_dir=cache_dir)
    cfg.decode_head.update(head)
    return cfg


def build_maskclip(clip, names=NAMES, cache_dir=None, **head):
    return MODELS.build(toy_maskclip_cfg(clip, names, cache_dir,
                                         **head)).eval()


def head_logits(model, image: Tensor) -> Tensor:
    """The head's output at feature resolution ``[B, K, h, w]``."""
    with torch.no_grad():
        return model.decode_head(model.extract_feat(image))


# ------------------------------------------------------------ references
def reference_text_embeddings(clip_model, names: Sequence[str],
                              templates: Sequence[str]) -> Tensor:
    """CLIP's prompt ensembling with OpenAI's encode_text at 77 tokens."""
    rows = []
    with torch.no_grad():
        for name in names:
            tokens = mmseg_tokenize([t.format(name) for t in templates], 77)
            feats = F.normalize(clip_model.encode_text(tokens), dim=-1)
            rows.append(F.normalize(feats.mean(0), dim=-1))
    return torch.stack(rows)


def reference_resnet_dense(clip_model, image: Tensor) -> Tensor:
    """``c_proj(v_proj(x5))`` per position with the OpenAI model's modules."""
    v = clip_model.visual
    with torch.no_grad():
        x = v.relu1(v.bn1(v.conv1(image)))
        x = v.relu2(v.bn2(v.conv2(x)))
        x = v.relu3(v.bn3(v.conv3(x)))
        x = v.layer4(v.layer3(v.layer2(v.layer1(v.avgpool(x)))))
        B, C, H, W = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        feat = v.attnpool.c_proj(v.attnpool.v_proj(tokens))
    return feat.transpose(1, 2).reshape(B, -1, H, W)


def reference_vit_dense(clip_model, image: Tensor) -> Tensor:
    """The last block's value path, ``ln_post``, ``proj`` with the OpenAI
    model's modules (input at the model's own resolution)."""
    v = clip_model.visual
    with torch.no_grad():
        x = v.conv1(image)
        B, C, H, W = x.shape
        x = x.reshape(B, C, -1).permute(0, 2, 1)
        cls = v.class_embedding + torch.zeros(B, 1, C)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding
        x = v.ln_pre(x).permute(1, 0, 2)  # [L, B, C], OpenAI's layout
        blocks = list(v.transformer.resblocks)
        for block in blocks[:-1]:
            x = block(x)
        last = blocks[-1]
        w_v = last.attn.in_proj_weight[2 * C:]
        b_v = last.attn.in_proj_bias[2 * C:]
        y = F.linear(last.ln_1(x), w_v, b_v)
        y = last.attn.out_proj(y) + x
        y = y + last.mlp(last.ln_2(y))
        y = v.ln_post(y) @ v.proj  # [L, B, D]
    return y[1:].permute(1, 2, 0).reshape(B, -1, H, W)


def cosine_logits(dense: Tensor, text: Tensor) -> Tensor:
    """``cos(f_i, t_k)`` for every position and class: ``[B, K, H, W]``."""
    return torch.einsum('bchw,kc->bkhw', F.normalize(dense, dim=1),
                        F.normalize(text, dim=1))
