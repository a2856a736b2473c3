"""The dense last block of a CLIP ViT (MaskCLIP, SCLIP, ClearCLIP, NACLIP,
vanilla) against the methods' formulas computed on OpenAI's own modules."""
import math

import pytest
import torch
import torch.nn.functional as F
from maskclip_helpers import build_maskclip
from mmseg.registry import MODELS

from denseclip.clip.checkpoint import load_clip_checkpoint
from denseclip.clip.arch import clip_visual_cfg
from denseclip.models.layers.dense_last_block import (DENSE_MODES,
                                                      DenseLastBlock,
                                                      neighbourhood_bias)
from denseclip.clip.pos_embed import resize_pos_embed
from denseclip.toy.clip_model import build_openai_clip, write_clip_checkpoint

# 3 blocks, 2 heads (OpenAI's rule: width // 64), patch 16 on 64 px: 4x4
VIT_2HEADS = dict(embed_dim=32, image_resolution=64, vision_layers=3,
                  vision_width=128, vision_patch_size=16, context_length=77,
                  transformer_width=32, transformer_heads=4,
                  transformer_layers=1)


@pytest.fixture(scope='module')
def vit2(tmp_path_factory):
    model = build_openai_clip(seed=3, **VIT_2HEADS)
    path = write_clip_checkpoint(
        model, str(tmp_path_factory.mktemp('vit2') / 'vit2.pt'))
    return model, path


def build_backbone(path, **dense):
    cfg = clip_visual_cfg(load_clip_checkpoint(path), path)
    cfg.update(pretrained=path, get_embeddings=False,
               dense_last_block=dense or dict(mode='maskclip'))
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    return backbone.eval()


def omega_reference(h, w, std):
    """``exp(-d^2 / (2 std^2))`` between grid positions, element by element,
    the class token's row and column zero."""
    omega = torch.zeros(h * w + 1, h * w + 1)
    for i in range(h * w):
        for j in range(h * w):
            d2 = (i // w - j // w)**2 + (i % w - j % w)**2
            omega[1 + i, 1 + j] = math.exp(-d2 / (2 * std**2))
    return omega


def reference_dense(clip_model, image, mode, residual, ffn, std=5.0):
    """The table of the issue, on OpenAI's sequence-first modules:
    ``ln_post`` of the last block's output, patch tokens, ``[B, C, H, W]``."""
    v = clip_model.visual
    with torch.no_grad():
        x = v.conv1(image)
        B, C, H, W = x.shape
        x = x.reshape(B, C, -1).permute(0, 2, 1)
        x = torch.cat([v.class_embedding + torch.zeros(B, 1, C), x], dim=1)
        x = v.ln_pre(x + v.positional_embedding).permute(1, 0, 2)  # L, B, C
        blocks = list(v.transformer.resblocks)
        for blk in blocks[:-1]:
            x = blk(x)
        blk = blocks[-1]
        L = x.shape[0]
        heads = blk.attn.num_heads
        d = C // heads
        s = d**-0.5
        q, k, val = F.linear(blk.ln_1(x), blk.attn.in_proj_weight,
                             blk.attn.in_proj_bias).chunk(3, dim=-1)
        q, k, val = (t.reshape(L, B * heads, d).transpose(0, 1)
                     for t in (q, k, val))

        def softmax(a):
            return F.softmax(a, dim=-1)

        if mode == 'maskclip':
            weights = torch.eye(L).expand(B * heads, L, L)
        elif mode == 'vanilla':
            weights = softmax(q @ k.transpose(1, 2) * s)
        elif mode == 'sclip':
            weights = (softmax(q @ q.transpose(1, 2) * s) +
                       softmax(k @ k.transpose(1, 2) * s))
        elif mode == 'clearclip':
            weights = softmax(q @ q.transpose(1, 2) * s)
        else:
            weights = softmax(k @ k.transpose(1, 2) * s +
                              omega_reference(H, W, std))
        out = (weights @ val).transpose(0, 1).reshape(L, B, C)
        out = blk.attn.out_proj(out)
        y = x + out if residual else out
        if ffn:
            y = y + blk.mlp(blk.ln_2(y))
        y = v.ln_post(y.permute(1, 0, 2))  # B, L, C
    return y[:, 1:].transpose(1, 2).reshape(B, C, H, W)


ROWS = [('maskclip', True, True), ('maskclip', False, False),
        ('sclip', True, True), ('clearclip', False, False),
        ('naclip', False, False), ('vanilla', True, True),
        ('naclip', True, True), ('clearclip', True, False)]


@pytest.mark.parametrize('mode, residual, ffn', ROWS)
def test_dense_block_equals_the_formula_on_openai_modules(
        vit2, mode, residual, ffn):
    model, path = vit2
    backbone = build_backbone(path, mode=mode, residual=residual, ffn=ffn)
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = backbone(image)[-1]['dense']
    expected = reference_dense(model, image, mode, residual, ffn)
    assert ours.shape == (2, 128, 4, 4)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_modes_differ_and_defaults_are_the_methods_rows(vit2):
    _, path = vit2
    image = torch.randn(1, 3, 64, 64)
    outs = {}
    for mode in DENSE_MODES:
        # SC-CLIP's layers for 3 blocks (it publishes 12 and 24)
        extra = (dict(self_adjust=dict(pre_layer=1, post_layer=0),
                      fusion=dict(layers=(0, 2)), cls_weight=0.3)
                 if mode == 'scclip' else {})
        block = build_backbone(path, mode=mode, **extra).dense_last_block
        assert (block.residual, block.ffn) == DENSE_MODES[mode]
        # ProxyCLIP attends with a VFM's features (here on CLIP's 4x4 grid)
        proxy = (dict(proxy_features=torch.randn(
            1, 8, 4, 4, generator=torch.Generator().manual_seed(2)))
            if mode == 'proxyclip' else {})
        with torch.no_grad():
            outs[mode] = build_backbone(path, mode=mode,
                                        **extra)(image, **proxy)[-1]['dense']
    modes = list(outs)
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            assert not torch.allclose(outs[a], outs[b]), (a, b)
    assert DENSE_MODES['clearclip'] == (False, False)
    assert DENSE_MODES['naclip'] == (False, False)
    assert DENSE_MODES['sclip'] == (True, True)


def test_naclip_bias_is_the_gaussian_neighbourhood_built_once_per_grid():
    torch.testing.assert_close(neighbourhood_bias((3, 4), 5.0),
                               omega_reference(3, 4, 5.0))
    torch.testing.assert_close(neighbourhood_bias((2, 2), 1.5),
                               omega_reference(2, 2, 1.5))
    block = DenseLastBlock('naclip')
    like = torch.zeros(1)
    first = block.bias((4, 6), like)
    assert block.bias((4, 6), like) is first
    assert block.bias((6, 4), like) is not first
    assert first.shape == (25, 25)
    assert first[0].abs().sum() == 0 and first[:, 0].abs().sum() == 0


def test_any_input_size_with_bicubic_positions_as_the_methods_do(vit2):
    """A 96x64 input (6x4 tokens): positions are resized as SCLIP / NACLIP
    write it (bicubic, scale factors (n + 0.1) / side)."""
    model, path = vit2
    pos = model.visual.positional_embedding.detach()
    side = 4
    ref = F.interpolate(
        pos[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2),
        scale_factor=((6 + 0.1) / side, (4 + 0.1) / side), mode='bicubic',
        align_corners=False, recompute_scale_factor=False)
    ref = torch.cat([pos[:1], ref.permute(0, 2, 3, 1).reshape(24, -1)])
    torch.testing.assert_close(resize_pos_embed(pos, (6, 4), 'bicubic'), ref)
    backbone = build_backbone(path, mode='naclip')
    backbone.pos_interpolation = 'bicubic'
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 96, 64))[-1]['dense']
    assert out.shape == (1, 128, 6, 4)
    with pytest.raises(ValueError, match="must be one of \\('bilinear', "
                       "'bicubic', 'maskclip'\\), got 'nearest'"):
        resize_pos_embed(pos, (6, 4), 'nearest')


def test_unknown_mode_and_resnet_with_a_vit_mode_are_named_errors(rn_clip):
    with pytest.raises(ValueError, match="unknown mode 'gem'; valid modes: "
                       'maskclip, sclip, clearclip, naclip, vanilla'):
        DenseLastBlock('gem')
    cfg = clip_visual_cfg(load_clip_checkpoint(rn_clip.jit), rn_clip.jit)
    cfg.update(dense_last_block=dict(mode='sclip'))
    with pytest.raises(ValueError, match="CLIPResNet: dense_last_block mode "
                       "'sclip' rewires the last attention block of a CLIP "
                       'ViT; a ResNet CLIP has none'):
        MODELS.build(cfg)
    cfg.update(dense_last_block=dict(mode='maskclip'))
    MODELS.build(cfg)  # MaskCLIP's value path exists for a ResNet


def test_key_smoothing_and_prompt_denoising_work_with_every_mode(
        vit_clip, tmp_path):
    image = torch.randn(1, 3, 64, 64)
    for mode in DENSE_MODES:
        model = build_maskclip(vit_clip, cache_dir=str(tmp_path),
                               ks_thresh=1.0, pd_thresh=0.5)
        if mode == 'scclip':  # the 2 blocks of the toy ViT
            block = DenseLastBlock(mode, self_adjust=dict(pre_layer=0,
                                                          post_layer=0),
                                   fusion=dict(layers=(0, 1)), cls_weight=.3)
        else:
            block = DenseLastBlock(mode)
        block.bind_depth(len(model.backbone.transformer.resblocks))
        model.backbone.dense_last_block = block
        with torch.no_grad():
            if mode == 'proxyclip':  # a VFM's features on a finer grid
                feats = model.backbone(image, proxy_features=torch.randn(
                    1, 8, 8, 8))
            else:
                feats = model.extract_feat(image)
            probs = model.decode_head(feats)
        grid = (8, 8) if mode == 'proxyclip' else (4, 4)
        assert probs.shape == (1, 4, *grid)
        assert torch.isfinite(probs).all()
