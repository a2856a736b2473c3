"""SC-CLIP (Self-Calibrated CLIP): each part against a reference written
here from its definition (the official code's, SuleBai/SC-CLIP
``clip/model.py``: ``lof_pytorch``, ``mean_interpolation``,
``adaptively_aggregate``, ``custom_attn``, ``VisionTransformer.forward``),
and the whole last block of tiny random ViT CLIPs against their
composition on OpenAI's own sequence-first modules."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from denseclip.apis import maskclip_model_cfg, method_settings
from denseclip.clip.checkpoint import load_clip_checkpoint
from denseclip.clip.arch import clip_visual_cfg
from denseclip.models.layers.anomaly_tokens import (AnomalyTokenResolver,
                                                    anomaly_mask,
                                                    fill_from_neighbours,
                                                    local_outlier_factor)
from denseclip.models.layers.dense_last_block import DenseLastBlock
from denseclip.clip.pos_embed import resize_pos_embed
from denseclip.models.layers.self_adjusting_attention import (
    aggregate_by_affinity, cosine_affinity, self_adjusted_attention)
from denseclip.models.layers.self_calibrated_block import SCCLIP_LAYERS
from denseclip.toy.clip_model import build_openai_clip, write_clip_checkpoint

# tiny ViTs of 4 blocks, 2 heads; SC-CLIP's layers scaled to 4 blocks
TINY = dict(embed_dim=32, vision_layers=4, vision_width=64,
            vision_heads=2, context_length=77, transformer_width=32,
            transformer_heads=2, transformer_layers=1)
TINY_LAYERS = dict(self_adjust=dict(pre_layer=2, post_layer=1),
                   fusion=dict(layers=(0, 3)), cls_weight=0.3)


# ------------------------------------------------------------ references
def lof_reference(x: np.ndarray, k: int) -> np.ndarray:
    """SC-CLIP's factor token by token: squared distances, reachability
    ``max(d(p, o), kdist(p))`` with the token's own k-distance,
    ``lrd(p) = k / sum_o reach(p, o)``, ``LOF(p) = mean_o lrd(o) / lrd(p)``."""
    n = len(x)
    d = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    knn, kdist = [], np.empty(n)
    for p in range(n):
        nearest = sorted((d[p, o], o) for o in range(n) if o != p)[:k]
        knn.append([o for _, o in nearest])
        kdist[p] = nearest[-1][0]
    lrd = np.array([k / sum(max(d[p, o], kdist[p]) for o in knn[p])
                    for p in range(n)])
    return np.array([np.mean([lrd[o] / lrd[p] for o in knn[p]])
                     for p in range(n)])


def mask_reference(x: np.ndarray, k: int = 30, c: float = 0.05):
    lof = lof_reference(x, min(k, len(x) - 1))
    return lof > np.quantile(lof, 1 - c)


def fill_reference(tokens: np.ndarray, mask: np.ndarray, grid) -> np.ndarray:
    """Each masked token (row-major on ``grid``) the mean of its unmasked
    8-neighbours in the grid; unchanged without one."""
    h, w = grid
    out = tokens.copy()
    for i in np.flatnonzero(mask):
        r, c = divmod(i, w)
        around = [(r + dr) * w + c + dc for dr in (-1, 0, 1)
                  for dc in (-1, 0, 1) if (dr, dc) != (0, 0) and
                  0 <= r + dr < h and 0 <= c + dc < w]
        good = [j for j in around if not mask[j]]
        if good:
            out[i] = tokens[good].mean(0)
    return out


def aggregate_reference(tokens, affinity, beta=0.4):
    weights = np.where(affinity < beta, 0., affinity)
    return weights / (weights.sum(-1, keepdims=True) + 1e-6) @ tokens


def cos_reference(x):
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return x @ x.T


def softmax(a):
    a = a - a.max(-1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(-1, keepdims=True)


def attention_reference(block, tokens, cls, guide, w, scale=3.0):
    """``custom_attn`` on patch tokens ``[N, C]`` (numpy) plus ``w`` times
    the class token: ``(softmax(mask(guide)) + softmax(k k^T s)) / 2`` per
    head (or the keys' alone when ``guide`` is None), then ``out_proj``."""
    t = torch.from_numpy(tokens).float()
    with torch.no_grad():
        qkv = F.linear(block.ln_1(t), block.attn.in_proj_weight,
                       block.attn.in_proj_bias).double().numpy()
    C = tokens.shape[1]
    heads = block.attn.num_heads
    d = C // heads
    k, v = qkv[:, C:2 * C], qkv[:, 2 * C:]
    outs = []
    for h in range(heads):
        kh, vh = k[:, h * d:(h + 1) * d], v[:, h * d:(h + 1) * d]
        weights = softmax(kh @ kh.T * d ** -0.5)
        if guide is not None:
            g = (guide - guide.mean()) * scale
            g = np.where(g < 0, -np.inf, g)
            weights = (weights + softmax(g)) / 2
        outs.append(weights @ vh)
    proj = block.attn.out_proj
    out = (np.concatenate(outs, 1) @ proj.weight.detach().double().numpy().T +
           proj.bias.detach().double().numpy())
    return out + w * cls


def scclip_reference(clip_model, image, pre=2, post=1, fusion=(0, 3),
                     w=0.3, anomalies=True, self_adjust=True, use_fusion=True):
    """SC-CLIP's dense features ``[N, D]`` (``ln_post``, ``proj``) of one
    image, from OpenAI's sequence-first modules, step by step."""
    v = clip_model.visual
    with torch.no_grad():
        x = v.conv1(image)
        _, C, H, W = x.shape
        x = x.reshape(1, C, -1).permute(0, 2, 1)
        x = torch.cat([v.class_embedding + torch.zeros(1, 1, C), x], 1)
        pos = resize_pos_embed(v.positional_embedding, (H, W), 'bicubic')
        x = v.ln_pre(x + pos).permute(1, 0, 2)  # L, 1, C
        blocks = list(v.transformer.resblocks)
        outs = []
        for blk in blocks[:-1]:
            x = blk(x)
            outs.append(x[:, 0].double().numpy())
    grid = (H, W)
    last = outs[-1]
    cls, patches = last[0], last[1:]
    mask = (mask_reference(patches) if anomalies
            else np.zeros(len(patches), bool))
    patches = fill_reference(patches, mask, grid)
    guide = post_aff = None
    if self_adjust:
        guide = cos_reference(fill_reference(outs[pre][1:], mask, grid))
        post_aff = cos_reference(outs[post][1:])
        patches = aggregate_reference(patches, guide)
    block = blocks[-1]
    y = attention_reference(block, patches, cls, guide, w)
    if self_adjust:
        y = aggregate_reference(y, post_aff)
    if use_fusion:
        levels = sum(outs[i] for i in range(*fusion))
        f = attention_reference(block, levels[1:], levels[0], guide, w)
        y = y + (aggregate_reference(f, post_aff) if self_adjust else f)
    with torch.no_grad():
        y = v.ln_post(torch.from_numpy(y).float()) @ v.proj
    return y, mask


# -------------------------------------------------------------- fixtures
@pytest.fixture(scope='module', params=[(16, 64), (14, 56)],
                ids=['patch16', 'patch14'])
def tiny_vit(request, tmp_path_factory):
    patch, res = request.param
    model = build_openai_clip(seed=patch, image_resolution=res,
                              vision_patch_size=patch, **TINY)
    path = write_clip_checkpoint(
        model, str(tmp_path_factory.mktemp('scclip') / f'vit{patch}.pt'),
        torchscript=False)
    return model, path, patch


def build_backbone(path, **block):
    cfg = clip_visual_cfg(load_clip_checkpoint(path), path)
    cfg.update(pretrained=path, get_embeddings=False, heads=2,
               pos_interpolation='bicubic',
               dense_last_block=dict(mode='scclip', **block))
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    return backbone.eval()


def ours(backbone, model, image):
    with torch.no_grad():
        dense = backbone(image)[-1]['dense'][0]
    return dense.flatten(1).T @ model.visual.proj


# ----------------------------------------------------------------- parts
def test_local_outlier_factor_and_mask_equal_the_definition():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(2, 70, 12, generator=gen)
    tokens[0, 5] += 6  # one clear outlier in image 0
    lof = local_outlier_factor(tokens, 30)
    mask = anomaly_mask(tokens, 30, 0.05)
    for b in range(2):
        ref = lof_reference(tokens[b].numpy(), 30)
        np.testing.assert_allclose(lof[b].numpy(), ref, rtol=1e-5)
        assert mask[b].tolist() == mask_reference(tokens[b].numpy()).tolist()
        # the quantile lies between sorted positions 65 and 66 (0.95 * 69):
        # the 4 largest factors are above it
        assert int(mask[b].sum()) == 4
    assert bool(mask[0, 5]) and lof[0, 5] == lof[0].max()
    # fewer tokens than neighbours: k is N - 1
    few = tokens[:, :9]
    np.testing.assert_allclose(local_outlier_factor(few, 30)[0].numpy(),
                               lof_reference(few[0].numpy(), 8), rtol=1e-5)


def test_anomalies_are_filled_from_their_unmasked_neighbours():
    gen = torch.Generator().manual_seed(1)
    grid = (5, 7)  # not square: row-major, 7 columns
    tokens = torch.randn(1, 35, 4, generator=gen)
    mask = torch.zeros(1, 35, dtype=torch.bool)
    # a corner, an edge, a block of 3 x 3 whose centre has no clean
    # neighbour (kept as it is), and their neighbours
    mask[0, [0, 6, 15, 16, 17, 22, 23, 24, 29, 30, 31]] = True
    out = AnomalyTokenResolver.fill(tokens, mask, grid)
    ref = fill_reference(tokens[0].numpy(), mask[0].numpy(), grid)
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-6)
    assert torch.equal(out[0, 23], tokens[0, 23])  # no clean neighbour
    assert torch.equal(out[0, ~mask[0]], tokens[0, ~mask[0]])
    maps = tokens.transpose(1, 2).reshape(1, 4, *grid)
    assert torch.allclose(fill_from_neighbours(maps, mask.view(1, *grid)),
                          out.transpose(1, 2).reshape(1, 4, *grid))


def test_self_adjusting_parts_equal_the_definition():
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(1, 20, 8, generator=gen) + 0.5
    tokens = torch.randn(1, 20, 6, generator=gen)
    aff = cosine_affinity(feats)
    np.testing.assert_allclose(aff[0].numpy(),
                               cos_reference(feats[0].double().numpy()),
                               atol=1e-6)
    np.testing.assert_allclose(
        aggregate_by_affinity(tokens, aff, 0.4)[0].numpy(),
        aggregate_reference(tokens[0].double().numpy(),
                            aff[0].double().numpy()), atol=1e-6)
    k = torch.randn(1, 2, 20, 3, generator=gen)
    v = torch.randn(1, 2, 20, 3, generator=gen)
    out = self_adjusted_attention(k, v, aff, 3.0)
    a = aff[0].double().numpy()
    g = (a - a.mean()) * 3.0
    guide = softmax(np.where(g < 0, -np.inf, g))
    for h in range(2):
        kh, vh = k[0, h].double().numpy(), v[0, h].double().numpy()
        ref = (guide + softmax(kh @ kh.T * 3 ** -0.5)) / 2 @ vh
        np.testing.assert_allclose(out[0, h].numpy(), ref, atol=1e-6)


# ------------------------------------------------------------- the whole
@pytest.mark.parametrize('size', [(8, 8), (10, 7)], ids=['square', 'wide'])
def test_scclip_dense_features_equal_the_composed_references(tiny_vit, size):
    """Two input sizes (a square grid and a 10 x 7 one) per patch size."""
    model, path, patch = tiny_vit
    backbone = build_backbone(path, **TINY_LAYERS)
    image = torch.randn(1, 3, size[0] * patch, size[1] * patch,
                        generator=torch.Generator().manual_seed(patch))
    ref, mask = scclip_reference(model, image)
    assert 1 <= mask.sum() <= 0.05 * mask.size + 1
    got = ours(backbone, model, image)
    assert got.shape == (size[0] * size[1], 32)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('off', ['anomaly_tokens', 'self_adjust', 'fusion'])
def test_each_part_turns_off_alone(tiny_vit, off):
    model, path, patch = tiny_vit
    options = dict(TINY_LAYERS, **{off: False})
    backbone = build_backbone(path, **options)
    image = torch.randn(1, 3, 8 * patch, 9 * patch,
                        generator=torch.Generator().manual_seed(3))
    ref, _ = scclip_reference(model, image,
                              anomalies=off != 'anomaly_tokens',
                              self_adjust=off != 'self_adjust',
                              use_fusion=off != 'fusion')
    got = ours(backbone, model, image)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    full, _ = scclip_reference(model, image)
    assert (got - full).abs().max() > 1e-3  # the part mattered
    # pre 2, post 1, fusion 0..2
    assert backbone.dense_last_block.intermediate_layers == (
        {1, 2} if off == 'fusion' else {0, 1, 2})


def test_a_batch_is_its_images_one_by_one(tiny_vit):
    model, path, patch = tiny_vit
    backbone = build_backbone(path, **TINY_LAYERS)
    images = torch.randn(3, 3, 8 * patch, 8 * patch,
                         generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        batch = backbone(images)[-1]['dense']
        for i in range(3):
            one = backbone(images[i:i + 1])[-1]['dense']
            torch.testing.assert_close(batch[i:i + 1], one, atol=1e-5,
                                       rtol=1e-5)


@pytest.mark.parametrize('mode', ['maskclip', 'naclip'])
def test_anomaly_tokens_work_with_other_modes(tiny_vit, mode):
    """The option resolves the last block's input, then the mode runs."""
    model, path, patch = tiny_vit
    cfg = clip_visual_cfg(load_clip_checkpoint(path), path)
    cfg.update(pretrained=path, get_embeddings=False, heads=2,
               dense_last_block=dict(mode=mode, anomaly_tokens=True))
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    backbone.eval()
    assert backbone.dense_last_block.anomaly_tokens.n_neighbors == 30
    image = torch.randn(1, 3, 8 * patch, 8 * patch,
                        generator=torch.Generator().manual_seed(5))
    plain = DenseLastBlock(mode=mode)
    with torch.no_grad():
        x, grid = backbone.embed(image)
        for blk in backbone.transformer.resblocks[:-1]:
            x = blk(x)
        mask = mask_reference(x[0, 1:].numpy())
        fixed = fill_reference(x[0, 1:].double().numpy(), mask, grid)
        x_fixed = torch.cat([x[:, :1], torch.from_numpy(fixed)[None].float()],
                            1)
        y, _ = plain(backbone.transformer.resblocks[-1], x_fixed, grid)
        ref = backbone.ln_post(y)[0, 1:]
        got = backbone(image)[-1]['dense'][0].flatten(1).T
        y0, _ = plain(backbone.transformer.resblocks[-1], x, grid)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert (got - backbone.ln_post(y0)[0, 1:]).abs().max() > 1e-4


# -------------------------------------------------------- settings, errors
def test_published_layers_follow_the_depth():
    for layers, published in SCCLIP_LAYERS.items():
        block = DenseLastBlock(mode='scclip')
        block.bind_depth(layers)
        s = block.scclip
        assert (s.self_adjust['pre_layer'], s.self_adjust['post_layer'],
                s.fusion_layers, s.cls_weight) == (
            published['pre_layer'], published['post_layer'],
            published['fusion_layers'], published['cls_weight'])
        assert (s.self_adjust['beta'], s.self_adjust['scale']) == (0.4, 3.0)
        assert (block.anomaly_tokens.n_neighbors,
                block.anomaly_tokens.contamination) == (30, 0.05)
    assert SCCLIP_LAYERS[12] == dict(pre_layer=8, post_layer=3,
                                     fusion_layers=(3, 10), cls_weight=0.3)
    assert SCCLIP_LAYERS[24] == dict(pre_layer=16, post_layer=6,
                                     fusion_layers=(8, 19), cls_weight=0.1)


@pytest.mark.parametrize('kwargs, depth, error', [
    (dict(mode='scclip'), 7, r'scclip on a 7-block ViT: SC-CLIP publishes '
     r'its layers for \[12, 24\] blocks .*give '
     r'dense_last_block.self_adjust.pre_layer'),
    (dict(mode='scclip', self_adjust=dict(pre_layer=11, post_layer=3)), 12,
     r'blocks \[11\] are not before the last of a 12-block ViT'),
    (dict(mode='scclip', fusion=dict(layers=(5, 5))), 12,
     r'fusion.layers \(5, 5\) is empty'),
    (dict(mode='scclip', self_adjust=dict(alpha=1)), 12,
     r"unknown self_adjust keys \['alpha'\]"),
])
def test_bad_scclip_settings_are_named(kwargs, depth, error):
    block = DenseLastBlock(**kwargs)
    with pytest.raises(ValueError, match=error):
        block.bind_depth(depth)


def test_bad_block_arguments_are_named():
    with pytest.raises(ValueError, match='scclip has no residual'):
        DenseLastBlock(mode='scclip', residual=True)
    with pytest.raises(ValueError, match="cls_weight are scclip's; mode is "
                       "'naclip'"):
        DenseLastBlock(mode='naclip', cls_weight=0.3)
    with pytest.raises(ValueError, match='contamination must be in'):
        DenseLastBlock(mode='sclip', anomaly_tokens=dict(contamination=1.5))
    with pytest.raises(TypeError, match='anomaly_tokens must be None'):
        DenseLastBlock(mode='sclip', anomaly_tokens='yes')


@pytest.fixture(scope='module')
def vit12(tmp_path_factory):
    """A 12-block ViT (SC-CLIP's ViT-B layers apply), tiny widths."""
    model = build_openai_clip(seed=0, image_resolution=64,
                              vision_patch_size=16,
                              **dict(TINY, vision_layers=12))
    return write_clip_checkpoint(
        model, str(tmp_path_factory.mktemp('vit12') / 'vit12.pt'))


def test_the_factory_and_a_resnet(rn_clip, vit12):
    settings = method_settings('scclip')
    assert settings == dict(last_block=dict(mode='scclip'),
                            templates='imagenet80', logit_scale=40.,
                            slide=(224, 112), short_side=336,
                            pos_interpolation='bicubic')
    path = vit12
    cfg = maskclip_model_cfg(path, ['a', 'b'], method='scclip',
                             templates='single')
    assert cfg.backbone.dense_last_block == dict(mode='scclip')
    assert cfg.logit_scale == 40. and cfg.test_cfg.crop_size == (224, 224)
    seg = MODELS.build(cfg)
    assert seg.backbone.dense_last_block.scclip.self_adjust['pre_layer'] == 8
    with pytest.raises(ValueError, match=r'toy_rn.pt is a CLIP ResNet; '
                       r'scclip changes the last attention block of a CLIP '
                       r'ViT: use a ViT file'):
        maskclip_model_cfg(rn_clip.jit, ['a', 'b'], method='scclip')


def test_the_demo_runs_scclip_and_names_what_a_small_vit_needs(
        vit12, vit_clip, tmp_path, capsys):
    import cv2
    from denseclip_helpers import load_tool
    demo = load_tool('maskclip_demo')
    image = str(tmp_path / 'photo.png')
    cv2.imwrite(image, np.random.default_rng(0).integers(
        0, 256, (40, 56, 3), dtype=np.uint8))
    out = str(tmp_path / 'out.png')

    def run(clip, heads):
        return demo.main([image, '--clip', clip, '--out', out, '--templates',
                          'single', '--text-heads', str(heads),
                          '--cache-dir', str(tmp_path / 'cache'),
                          '--classes', 'a,b|c', '--method', 'scclip'])

    assert run(vit12, 2) == 0
    assert cv2.imread(out).shape[0] == 40
    assert 'scclip: slide inference, images fit in 2048x336' in \
        capsys.readouterr().out
    with pytest.raises(SystemExit):
        run(vit_clip.jit, vit_clip.shape['transformer_heads'])
    message = capsys.readouterr().err
    assert 'scclip on a 2-block ViT' in message
    assert 'dense_last_block.self_adjust.pre_layer' in message
