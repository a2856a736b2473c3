"""ProxyCLIP's last block (proxy attention) against the paper's equations
computed on OpenAI's own modules, head by head and image by image; and the
errors of a proxyclip block or segmentor without its VFM."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from denseclip.clip.arch import clip_visual_cfg
from denseclip.clip.checkpoint import load_clip_checkpoint
from denseclip.models.layers.dense_last_block import DenseLastBlock
from denseclip.models.layers.proxy_attention import ProxyAttention
from denseclip.toy.clip_model import build_openai_clip, write_clip_checkpoint

# 2 blocks, 2 heads, patch 16 on 64 px: a 4x4 CLIP grid
VIT = dict(embed_dim=32, image_resolution=64, vision_layers=2,
           vision_width=128, vision_patch_size=16, context_length=77,
           transformer_width=32, transformer_heads=4, transformer_layers=1)


@pytest.fixture(scope='module')
def vit(tmp_path_factory):
    model = build_openai_clip(seed=5, **VIT)
    path = write_clip_checkpoint(
        model, str(tmp_path_factory.mktemp('proxy') / 'vit.pt'))
    return model, path


def backbone(path, **dense):
    cfg = clip_visual_cfg(load_clip_checkpoint(path), path)
    cfg.update(pretrained=path, get_embeddings=False,
               dense_last_block=dict(mode='proxyclip', **dense))
    module = MODELS.build(cfg)
    module.init_weights()
    return module.eval()


def vfm_features(batch, grid, seed=0):
    """Spatially smooth random features, so that the mask keeps some pairs
    and drops others."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 16, *grid, generator=g)
    return x + 3 * F.avg_pool2d(x, 3, 1, 1)


def proxy_reference(clip_model, image, proxy, beta=1.2, gamma=3.0):
    """ProxyCLIP's equations, one image and one head at a time, on OpenAI's
    sequence-first modules: ``ln_post(out_proj(softmax(mask(gamma (S -
    beta mean S))) up(v)))`` on the VFM's grid, ``[B, C, H', W']``."""
    v = clip_model.visual
    outs = []
    with torch.no_grad():
        for b in range(image.shape[0]):
            x = v.conv1(image[b:b + 1])
            _, C, H, W = x.shape
            x = x.reshape(1, C, -1).permute(0, 2, 1)
            x = torch.cat([v.class_embedding + torch.zeros(1, 1, C), x], 1)
            x = v.ln_pre(x + v.positional_embedding).permute(1, 0, 2)
            blocks = list(v.transformer.resblocks)
            for blk in blocks[:-1]:
                x = blk(x)
            blk = blocks[-1]
            heads = blk.attn.num_heads
            d = C // heads
            _, _, val = F.linear(blk.ln_1(x), blk.attn.in_proj_weight,
                                 blk.attn.in_proj_bias).chunk(3, dim=-1)
            f = proxy[b].flatten(1)  # [C', M]
            f = f / f.norm(dim=0, keepdim=True)
            S = f.t() @ f
            A = gamma * (S - beta * S.mean())
            A = torch.where(A < 0, torch.full_like(A, float('-inf')), A)
            weights = torch.softmax(A, dim=-1)
            Hp, Wp = proxy.shape[-2:]
            per_head = []
            for h in range(heads):
                vh = val[1:, 0, h * d:(h + 1) * d]  # [HW, d]
                vh = vh.t().reshape(1, d, H, W)
                vh = F.interpolate(vh, size=(Hp, Wp), mode='bilinear',
                                   align_corners=False)
                per_head.append(weights @ vh.reshape(d, -1).t())
            out = blk.attn.out_proj(torch.cat(per_head, dim=1))
            out = v.ln_post(out)  # [M, C]
            outs.append(out.t().reshape(C, Hp, Wp))
    return torch.stack(outs)


@pytest.mark.parametrize('grid', [(4, 4), (8, 8), (6, 10)])
def test_proxy_block_equals_the_equations_per_image_and_head(vit, grid):
    """On the VFM's grid (finer than CLIP's, as DINO ViT-B/8 against a
    patch-16 CLIP, and non-square); two images in one batch each get their
    own mean similarity."""
    model, path = vit
    image = torch.randn(2, 3, 64, 64,
                        generator=torch.Generator().manual_seed(1))
    proxy = vfm_features(2, grid)
    with torch.no_grad():
        out = backbone(path)(image, proxy_features=proxy)[-1]
    expected = proxy_reference(model, image, proxy)
    assert out['dense'].shape == (2, 128, *grid)
    assert out['key'].shape == (2, 128, *grid)
    torch.testing.assert_close(out['dense'], expected, rtol=1e-5, atol=1e-5)
    # a batch of one gives the same as that image in the batch
    with torch.no_grad():
        alone = backbone(path)(image[1:], proxy_features=proxy[1:])[-1]
    torch.testing.assert_close(alone['dense'], out['dense'][1:],
                               rtol=1e-5, atol=1e-5)


def test_beta_and_gamma_are_the_papers_and_change_the_output(vit):
    model, path = vit
    block = backbone(path).dense_last_block
    assert (block.proxy_attention.beta, block.proxy_attention.gamma) == (
        1.2, 3.0)
    assert (block.residual, block.ffn) == (False, False)
    image = torch.randn(1, 3, 64, 64)
    proxy = vfm_features(1, (8, 8), seed=3)
    with torch.no_grad():
        default = backbone(path)(image, proxy_features=proxy)[-1]['dense']
        other = backbone(path, beta=0.5, gamma=2.0)(
            image, proxy_features=proxy)[-1]['dense']
    expected = proxy_reference(model, image, proxy, beta=0.5, gamma=2.0)
    torch.testing.assert_close(other, expected, rtol=1e-5, atol=1e-5)
    assert (default - other).abs().max() > 1e-3


def test_the_mask_keeps_only_pairs_above_beta_times_the_mean():
    proxy = vfm_features(1, (5, 5), seed=4)
    weights = ProxyAttention(1.2, 3.0).weights(proxy)[0]
    f = F.normalize(proxy.flatten(2), dim=1)[0]
    S = f.t() @ f
    kept = S >= 1.2 * S.mean()
    assert 0 < kept.float().mean() < 1  # the mask does something here
    assert torch.all(weights[~kept] == 0)
    assert torch.all(weights[kept] > 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(25))


def test_a_window_of_alike_features_keeps_each_positions_own_value():
    """Features so alike that beta * mean(S) > 1 mask every pair: each
    position keeps its own value (ProxyCLIP's code gives NaN there)."""
    proxy = torch.ones(2, 16, 3, 4) + 1e-3 * vfm_features(2, (3, 4))
    weights = ProxyAttention(1.2, 3.0).weights(proxy)
    torch.testing.assert_close(weights, torch.eye(12).expand(2, 12, 12))
    values = torch.randn(2, 12, 6)
    out = ProxyAttention(1.2, 3.0)(proxy, values, (3, 4))
    torch.testing.assert_close(out, values)
    # where a row keeps more than itself, the diagonal rule changes nothing
    proxy = vfm_features(1, (5, 5), seed=4)
    f = F.normalize(proxy.flatten(2), dim=1)[0]
    A = 3.0 * (f.t() @ f - 1.2 * (f.t() @ f).mean())
    reference = torch.softmax(A.masked_fill(A < 0, float('-inf')), dim=-1)
    torch.testing.assert_close(ProxyAttention().weights(proxy)[0], reference)


def test_errors_name_what_to_give(vit):
    _, path = vit
    image = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"'proxyclip' needs a vision "
                       r"foundation model's patch features: set model.vfm"):
        backbone(path)(image)
    with pytest.raises(ValueError, match='beta and gamma are proxyclip'):
        DenseLastBlock('sclip', beta=1.0)
    with pytest.raises(ValueError, match='proxyclip has no residual'):
        DenseLastBlock('proxyclip', residual=True)
    with pytest.raises(ValueError, match='gamma must be > 0'):
        DenseLastBlock('proxyclip', gamma=0)
    cfg = clip_visual_cfg(load_clip_checkpoint(path), path)
    cfg.update(pretrained=path, get_embeddings=False,
               dense_last_block=dict(mode='sclip'))
    sclip = MODELS.build(cfg)
    sclip.init_weights()
    with pytest.raises(ValueError, match=r"proxy_features are read only by "
                       r"dense_last_block=dict\(mode='proxyclip'\)"):
        sclip(image, proxy_features=vfm_features(1, (4, 4)))
    with pytest.raises(ValueError, match=r'2 images of VFM features for 1'):
        backbone(path)(image, proxy_features=vfm_features(2, (4, 4)))


# ------------------------------------------- segmentor, API and the demo
def test_segmentor_attends_with_its_vfms_features(vit_clip, tiny_vfm,
                                                  tmp_path):
    """TrainingFreeSegmentor(vfm=...) scores = the head on the backbone
    given the VFM's features of the same (CLIP-normalised) images, on the
    VFM's grid (patch 8 against CLIP's 16)."""
    from denseclip.apis import maskclip_model_cfg
    cfg = maskclip_model_cfg(vit_clip.jit, ['red disc', 'sky', 'tree'],
                             method='proxyclip', templates='single',
                             text_encoder=dict(transformer_heads=4),
                             text_cache_dir=str(tmp_path), vfm=tiny_vfm,
                             inference='whole')
    assert cfg.vfm == dict(type='VisionFoundationModel', pretrained=tiny_vfm)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        scores = model.head_logits(images)
        expected = model.decode_head(model.backbone(
            images, proxy_features=model.vfm(images)))
    assert scores.shape == (2, 3, 8, 12)
    torch.testing.assert_close(scores, expected, rtol=0, atol=0)
    assert model.vfm(images).shape == (2, 32, 8, 12)


def test_segmentor_refuses_a_vfm_without_proxyclip_and_the_reverse(
        vit_clip, tiny_vfm, tmp_path):
    from denseclip.apis import maskclip_model_cfg
    cfg = maskclip_model_cfg(vit_clip.jit, ['a', 'b'], method='proxyclip',
                             templates='single',
                             text_encoder=dict(transformer_heads=4),
                             text_cache_dir=str(tmp_path), vfm=tiny_vfm)
    no_vfm = cfg.copy()
    no_vfm.pop('vfm')
    with pytest.raises(ValueError, match=r"mode 'proxyclip' attends with a "
                       r'vision foundation model: set model.vfm'):
        MODELS.build(no_vfm)
    sclip = cfg.copy()
    sclip.backbone = dict(cfg.backbone, dense_last_block=dict(mode='sclip'))
    with pytest.raises(ValueError, match=r"model.vfm is read only by the "
                       r"backbone's dense_last_block=dict\(mode='proxyclip'\);"
                       r" this backbone's is 'sclip'"):
        MODELS.build(sclip)
    with pytest.raises(ValueError, match=r'proxyclip attends with a vision '
                       r'foundation model.*vfm=\.\.\., the demo\'s --vfm'):
        maskclip_model_cfg(vit_clip.jit, ['a', 'b'], method='proxyclip')
    with pytest.raises(ValueError, match='vfm is read by proxyclip only; '
                       'method is naclip'):
        maskclip_model_cfg(vit_clip.jit, ['a', 'b'], method='naclip',
                           vfm=tiny_vfm)


def test_demo_runs_proxyclip_with_a_vfm_and_asks_for_one(
        vit_clip, tiny_vfm, tmp_path, capsys):
    import importlib.util
    import os.path as osp

    import cv2
    import numpy as np
    from denseclip_helpers import REPO
    spec = importlib.util.spec_from_file_location(
        '_proxy_demo', osp.join(REPO, 'tools', 'maskclip_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    image = str(tmp_path / 'photo.png')
    cv2.imwrite(image, np.random.default_rng(0).integers(
        0, 256, (70, 90, 3), dtype=np.uint8))
    out = str(tmp_path / 'out.png')
    common = [image, '--classes', 'red disc,sky', '--clip', vit_clip.jit,
              '--out', out, '--templates', 'single', '--text-heads', '4',
              '--cache-dir', str(tmp_path / 'cache'), '--method', 'proxyclip']
    with pytest.raises(SystemExit) as exit_info:
        demo.main(common)
    assert exit_info.value.code == 2
    assert "--vfm" in capsys.readouterr().err
    assert not osp.exists(out)
    assert demo.main(common + ['--vfm', tiny_vfm]) == 0
    assert cv2.imread(out).shape[0] == 70
    assert 'proxyclip: slide inference' in capsys.readouterr().out
