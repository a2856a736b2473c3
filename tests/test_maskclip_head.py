"""MaskClipHead: logits equal CLIP's own cosine similarities; prompt
denoising; key smoothing; text-embedding cache; file checks; the random-weight
guard; not trainable."""
import pytest
import torch
import torch.nn.functional as F
from maskclip_helpers import (NAMES, build_maskclip, cosine_logits,
                              head_logits, reference_resnet_dense,
                              reference_text_embeddings, reference_vit_dense,
                              toy_maskclip_cfg)
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

from denseclip.models.heads.maskclip_head import (key_smoothing,
                                                  prompt_denoising)
from denseclip.clip import zero_shot
from denseclip.clip.prompt_templates import get_templates
from denseclip.clip.weights_guard import RandomWeightsError
from denseclip.toy.clip_model import build_openai_clip, write_clip_checkpoint

TWO_TEMPLATES = ['a photo of a {}.', 'there is a {} in the scene.']


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / 'cache')


# ------------------------------------------------------------ CLIP's maths
def test_resnet_logits_are_clip_cosine_similarities(rn_clip, cache_dir):
    model = build_maskclip(rn_clip, cache_dir=cache_dir,
                           templates=TWO_TEMPLATES)
    image = torch.randn(2, 3, 96, 64)  # not square, not CLIP's 64x64
    logits = head_logits(model, image)
    text = reference_text_embeddings(rn_clip.model, NAMES, TWO_TEMPLATES)
    expected = cosine_logits(reference_resnet_dense(rn_clip.model, image),
                             text)
    assert logits.shape == (2, len(NAMES), 3, 2)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_vit_logits_are_clip_cosine_similarities(vit_clip, cache_dir):
    model = build_maskclip(vit_clip, cache_dir=cache_dir,
                           templates=TWO_TEMPLATES)
    image = torch.randn(2, 3, 64, 64)
    logits = head_logits(model, image)
    text = reference_text_embeddings(vit_clip.model, NAMES, TWO_TEMPLATES)
    expected = cosine_logits(reference_vit_dense(vit_clip.model, image), text)
    assert logits.shape == (2, len(NAMES), 4, 4)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_85_templates_are_mmseg_imagenet_plus_five_scene_ones():
    from mmseg.utils import get_predefined_templates
    templates = get_templates('imagenet85')
    assert len(templates) == 85
    assert templates[:80] == list(get_predefined_templates('imagenet'))
    assert templates[80] == 'there is a {} in the scene.'
    assert templates[84] == 'this is one {} in the scene.'
    assert get_templates('single') == ['a photo of a {}.']


def test_vit_value_path_is_the_same_when_the_last_block_also_runs(vit_clip):
    from conftest import vit_backbone_cfg
    image = torch.randn(1, 3, 64, 64)
    outs = {}
    for name, extra in (('alone', dict(out_indices=(), get_embeddings=False)),
                        ('with_all', dict(out_indices=[0, 0, 1, 1],
                                          get_embeddings=True))):
        backbone = MODELS.build(vit_backbone_cfg(
            vit_clip.shape, pretrained=vit_clip.jit, return_value_path=True,
            **extra))
        backbone.init_weights()
        with torch.no_grad():
            outs[name] = backbone.eval()(image)
    assert len(outs['alone']) == 1 and len(outs['with_all']) == 6
    for key in ('dense', 'key'):
        torch.testing.assert_close(outs['alone'][0][key],
                                   outs['with_all'][-1][key])
    assert outs['alone'][0]['dense'].shape == (1, 64, 4, 4)


# --------------------------------------------------------- prompt denoising
def test_prompt_denoising_suppresses_exactly_the_classes_below_threshold():
    # 2 images, 4 classes, 2x2 positions; probabilities are softmax(100 x)
    logits = torch.zeros(2, 4, 2, 2)
    # image 0: class 0 certain at one position, class 1 at another; class 2
    # at most 0.4 anywhere (split with class 3 and others); class 3 at most 0.4
    logits[0, 0, 0, 0] = 0.2
    logits[0, 1, 0, 1] = 0.2
    logits[0, 2, 1, 0] = logits[0, 3, 1, 0] = 0.0093  # ~0.4 each
    # image 1: only class 3 is ever confident
    logits[1, 3] = 0.2
    probs = F.softmax(logits * 100, dim=1)
    max_p = probs.flatten(2).amax(2)
    assert max_p[0, 2] < 0.5 and max_p[0, 3] < 0.5 and max_p[0, :2].min() > .9
    out = prompt_denoising(logits.clone(), 0.5)
    suppressed = {(b, k) for b in range(2) for k in range(4)
                  if bool((out[b, k] == -100).all())}
    assert suppressed == {(0, 2), (0, 3), (1, 0), (1, 1), (1, 2)}
    for b, k in {(b, k) for b in range(2) for k in range(4)} - suppressed:
        assert torch.equal(out[b, k], logits[b, k])
    assert torch.equal(prompt_denoising(logits, 0.), logits)


def test_head_applies_prompt_denoising(vit_clip, cache_dir):
    plain = build_maskclip(vit_clip, cache_dir=cache_dir)
    image = torch.randn(1, 3, 64, 64)
    a = head_logits(plain, image)
    max_p = F.softmax(a * 100, dim=1).flatten(2).amax(2)[0]
    # a threshold between the 2nd and 3rd most confident classes
    top = max_p.sort(descending=True).values
    thresh = float(top[1] + top[2]) / 2
    denoised = build_maskclip(vit_clip, cache_dir=cache_dir,
                              pd_thresh=thresh)
    b = head_logits(denoised, image)
    kept = [k for k in range(len(NAMES)) if not (b[0, k] == -100).all()]
    assert kept == sorted(max_p.topk(2).indices.tolist())
    for k in range(len(NAMES)):
        if k in kept:
            assert torch.equal(b[0, k], a[0, k])


# ------------------------------------------------------------ key smoothing
def test_key_smoothing_changes_only_uncertain_positions():
    torch.manual_seed(0)
    B, K, H, W, C = 2, 3, 3, 4, 8
    probs = F.softmax(torch.randn(B, K, H, W), dim=1)
    probs[0, :, 0, 0] = torch.tensor([0.98, 0.01, 0.01])  # confident
    probs[1, :, 2, 3] = torch.tensor([0.02, 0.97, 0.01])
    keys = torch.randn(B, C, H, W)
    out = key_smoothing(probs, keys, thresh=0.9)
    p = probs.flatten(2).transpose(1, 2)
    k = keys.flatten(2).transpose(1, 2)
    for b in range(B):
        for i in range(H * W):
            if p[b, i].max() >= 0.9:
                expected = p[b, i]
            else:  # sum_j cos(k_i, k_j) p_j
                cos = F.cosine_similarity(k[b, i][None], k[b], dim=1)
                expected = (cos[:, None] * p[b]).sum(0)
            torch.testing.assert_close(out[b, :, i // W, i % W], expected)
    assert torch.equal(out[0, :, 0, 0], probs[0, :, 0, 0])


def test_key_smoothing_position_norm_is_the_reference_formula():
    torch.manual_seed(1)
    probs = F.softmax(torch.randn(1, 3, 2, 5), dim=1)
    keys = torch.randn(1, 6, 2, 5)
    out = key_smoothing(probs, keys, thresh=1.0, key_norm='position')
    k = F.normalize(keys.flatten(2).transpose(1, 2), p=2)  # the reference
    expected = (k @ k.transpose(1, 2)) @ probs.flatten(2).transpose(1, 2)
    torch.testing.assert_close(out.flatten(2).transpose(1, 2), expected)


def test_uniform_keys_smooth_towards_the_image_total():
    """With one key everywhere, cos(k_i, k_j) = 1: every uncertain position
    takes the image's total probability mass; confident ones stay."""
    torch.manual_seed(2)
    probs = F.softmax(torch.randn(1, 3, 4, 4) * 0.3, dim=1)
    assert probs.amax(1).max() < 0.8
    probs[0, :, 1, 1] = torch.tensor([0.05, 0.9, 0.05])
    keys = torch.randn(1, 5, 1, 1).expand(1, 5, 4, 4)
    out = key_smoothing(probs, keys, thresh=0.8)
    total = probs.sum(dim=(2, 3))[0]
    for i in range(4):
        for j in range(4):
            expected = probs[0, :, 1, 1] if (i, j) == (1, 1) else total
            torch.testing.assert_close(out[0, :, i, j], expected)


def test_uniform_image_is_unchanged_by_key_smoothing(vit_clip, cache_dir):
    """A uniform image (one value feature and one key everywhere) keeps its
    segmentation: each position becomes HW x its own probabilities."""
    plain = build_maskclip(vit_clip, cache_dir=cache_dir)
    smooth = build_maskclip(vit_clip, cache_dir=cache_dir, ks_thresh=1.0)
    torch.manual_seed(3)
    feats = dict(dense=torch.randn(1, 64, 1, 1).expand(1, 64, 3, 5),
                 key=torch.randn(1, 64, 1, 1).expand(1, 64, 3, 5))
    with torch.no_grad():
        a = plain.decode_head([feats])
        b = smooth.decode_head([feats])
    probs = F.softmax(a * 100, dim=1)
    assert probs.amax(1).max() < 1.0  # every position is smoothed
    torch.testing.assert_close(b, probs * 15)
    assert torch.equal(a.argmax(1), b.argmax(1))


def test_key_smoothing_uses_the_last_attention_keys(rn_clip, cache_dir):
    smooth = build_maskclip(rn_clip, cache_dir=cache_dir, ks_thresh=1.0)
    image = torch.randn(1, 3, 96, 96)
    out = head_logits(smooth, image)
    plain = build_maskclip(rn_clip, cache_dir=cache_dir)
    probs = F.softmax(head_logits(plain, image) * 100, dim=1)
    pool = rn_clip.model.visual.attnpool
    with torch.no_grad():
        x5 = smooth.backbone(image)[3]
        keys = pool.k_proj(x5.flatten(2).transpose(1, 2))  # OpenAI's k_proj
    keys = keys.transpose(1, 2).reshape(x5.shape[0], -1, *x5.shape[2:])
    torch.testing.assert_close(out, key_smoothing(probs, keys, 1.0))


# ------------------------------------------------------- text embeddings
def test_text_embeddings_are_cached_on_disk(vit_clip, cache_dir, monkeypatch,
                                            tmp_path):
    calls = []
    encode = zero_shot.encode_prompts

    def counting(*args, **kwargs):
        calls.append(list(args[1]))
        return encode(*args, **kwargs)

    def no_tower(*args, **kwargs):
        raise AssertionError('the text tower was built on a cache hit')

    monkeypatch.setattr(zero_shot, 'encode_prompts', counting)
    image = torch.randn(1, 3, 64, 64)
    first = head_logits(build_maskclip(vit_clip, cache_dir=cache_dir), image)
    assert calls == [NAMES]
    with monkeypatch.context() as patch:
        patch.setattr(zero_shot, 'build_clip_text_tower', no_tower)
        # second start: no text tower, no text-encoder call, same result
        second = head_logits(build_maskclip(vit_clip, cache_dir=cache_dir),
                             image)
        assert torch.equal(first, second)
        # a copy of the same file elsewhere hits the same entry
        copy = tmp_path / 'copy' / 'ViT.pt'
        copy.parent.mkdir()
        copy.write_bytes(open(vit_clip.jit, 'rb').read())
        model = MODELS.build(toy_maskclip_cfg(vit_clip, cache_dir=cache_dir))
        model.decode_head.clip_pretrained = str(copy)
        torch.testing.assert_close(head_logits(model.eval(), image), first)
    assert calls == [NAMES]
    # other names, templates or directory: other entries
    head_logits(build_maskclip(vit_clip, NAMES[:3], cache_dir=cache_dir),
                image)
    head_logits(build_maskclip(vit_clip, cache_dir=cache_dir,
                               templates=TWO_TEMPLATES), image)
    head_logits(build_maskclip(vit_clip, cache_dir=str(tmp_path / 'other')),
                image)
    assert calls == [NAMES, NAMES[:3], NAMES, NAMES]


def test_broken_cache_entry_is_recomputed(vit_clip, cache_dir):
    import glob
    model = build_maskclip(vit_clip, cache_dir=cache_dir)
    expected = head_logits(model, torch.zeros(1, 3, 64, 64))
    (entry, ) = glob.glob(f'{cache_dir}/text_embeddings/*.pth')
    with open(entry, 'wb') as f:
        f.write(b'truncated')
    again = build_maskclip(vit_clip, cache_dir=cache_dir)
    torch.testing.assert_close(
        head_logits(again, torch.zeros(1, 3, 64, 64)), expected)
    assert 'prompt ensembling' in again.decode_head.text_source
    assert torch.load(entry, weights_only=True)['embeddings'].shape == (4, 32)
# -------------------------------------------------- the reference's files
def test_reference_format_files_load_and_match(rn_clip, cache_dir, tmp_path):
    """A [K, C] text file and a projection dict (with the reference's unused
    'clip' entry) give the same logits as the OpenAI file itself."""
    from denseclip.models.heads.maskclip_projections import \
        projections_from_clip
    from denseclip.clip.checkpoint import load_clip_checkpoint
    direct = build_maskclip(rn_clip, cache_dir=cache_dir)
    image = torch.randn(1, 3, 64, 96)
    expected = head_logits(direct, image)
    text_file = str(tmp_path / 'voc_RN50_clip_text.pth')
    torch.save(direct.decode_head.text_embeddings.clone(), text_file)
    projs = projections_from_clip(load_clip_checkpoint(rn_clip.jit))
    projs['clip'] = {'stem.0.weight': torch.zeros(1)}
    projs_file = str(tmp_path / 'RN50_clip_weights.pth')
    torch.save(projs, projs_file)
    model = build_maskclip(rn_clip, cache_dir=cache_dir, clip_pretrained=None,
                           text_embeddings_path=text_file,
                           visual_projs_path=projs_file)
    torch.testing.assert_close(head_logits(model, image), expected)
    assert model.decode_head.projections_source == projs_file
    assert model.decode_head.text_source == text_file


@pytest.mark.parametrize('shape, numbers', [
    ((5, 64), ('5 class embeddings', 'text_categories=4')),
    ((4, 48), ('width 48', 'text_channels=64')),
])
def test_text_file_of_other_shape_names_both_numbers(rn_clip, tmp_path,
                                                      shape, numbers):
    path = str(tmp_path / 'text.pth')
    torch.save(torch.randn(*shape), path)
    model = build_maskclip(rn_clip, text_embeddings_path=path)
    with pytest.raises(RandomWeightsError) as err:
        head_logits(model, torch.randn(1, 3, 64, 64))
    assert path in str(err.value)
    for number in numbers:
        assert number in str(err.value)


def test_projection_file_of_another_model_names_both_shapes(vit_clip,
                                                            tmp_path):
    from denseclip.clip.checkpoint import load_clip_checkpoint
    from denseclip.models.heads.maskclip_projections import \
        projections_from_clip
    other = write_clip_checkpoint(
        build_openai_clip(**dict(vit_clip.shape, embed_dim=16)),
        str(tmp_path / 'other.pt'))
    path = str(tmp_path / 'ViT16_clip_weights.pth')
    torch.save(projections_from_clip(load_clip_checkpoint(other)), path)
    model = build_maskclip(vit_clip, visual_projs_path=path,
                           cache_dir=str(tmp_path))
    with pytest.raises(RandomWeightsError) as err:
        head_logits(model, torch.randn(1, 3, 64, 64))
    msg = str(err.value)
    assert path in msg and '(16, 64)' in msg and '(32, 64)' in msg
    assert 'text_channels=32' in msg and 'in_channels=64' in msg


def test_resnet_projection_file_in_a_vit_head_is_an_error(rn_clip, vit_clip,
                                                          tmp_path):
    from denseclip.clip.checkpoint import load_clip_checkpoint
    from denseclip.models.heads.maskclip_projections import \
        projections_from_clip
    path = str(tmp_path / 'RN50_clip_weights.pth')
    torch.save(projections_from_clip(load_clip_checkpoint(rn_clip.jit)), path)
    model = build_maskclip(vit_clip, visual_projs_path=path,
                           cache_dir=str(tmp_path))
    with pytest.raises(RandomWeightsError, match="no 'proj' projection"):
        head_logits(model, torch.randn(1, 3, 64, 64))


# ------------------------------------------------ never on random weights
def test_no_clip_file_anywhere_is_an_error_naming_the_option(vit_clip):
    cfg = toy_maskclip_cfg(vit_clip, clip_pretrained=None)
    cfg.backbone.pretrained = None
    model = MODELS.build(cfg).eval()  # building is fine
    with pytest.raises(RandomWeightsError) as err:
        head_logits(model, torch.randn(1, 3, 64, 64))
    msg = str(err.value)
    assert 'CLIPVisionTransformer has no CLIP weights' in msg
    assert 'pretrained' in msg and 'ViT-B-16.pt' in msg


def test_head_without_projections_or_names_is_an_error(rn_clip, cache_dir):
    model = build_maskclip(rn_clip, clip_pretrained=None)  # backbone has it
    with pytest.raises(RandomWeightsError) as err:
        head_logits(model, torch.randn(1, 3, 64, 64))
    assert 'clip_pretrained' in str(err.value)
    assert 'visual_projs_path' in str(err.value)
    model = build_maskclip(rn_clip, cache_dir=cache_dir)
    model.decode_head.class_names = None  # e.g. no ClassNamesHook
    with pytest.raises(RandomWeightsError, match='no class names'):
        head_logits(model, torch.randn(1, 3, 64, 64))


def test_a_full_checkpoint_is_a_legitimate_source(vit_clip, cache_dir,
                                                  tmp_path):
    """load_from of a whole MaskCLIP checkpoint: no CLIP file is configured,
    none is read, and the result equals the file-built model's."""
    source = build_maskclip(vit_clip, cache_dir=cache_dir)
    image = torch.randn(1, 3, 64, 64)
    expected = head_logits(source, image)  # loads the weights lazily
    path = str(tmp_path / 'maskclip.pth')
    torch.save({'meta': {}, 'state_dict': source.state_dict()}, path)
    cfg = toy_maskclip_cfg(vit_clip, clip_pretrained=None)
    cfg.backbone.pretrained = None
    model = MODELS.build(cfg).eval()
    load_checkpoint(model, path, map_location='cpu')
    torch.testing.assert_close(head_logits(model, image), expected)
    assert model.decode_head.projections_source == 'checkpoint'
    assert model.backbone.load_report is None  # no file read

    # a checkpoint that lacks the head is not enough
    model = MODELS.build(cfg).eval()
    backbone_only = {k: v for k, v in source.state_dict().items()
                     if k.startswith('backbone.')}
    model.load_state_dict(backbone_only, strict=False)
    with pytest.raises(RandomWeightsError, match='visual projections'):
        head_logits(model, image)


def test_init_weights_reads_the_files_before_any_forward(rn_clip, cache_dir):
    model = build_maskclip(rn_clip, cache_dir=cache_dir)
    model.init_weights()
    assert model.backbone.load_report is not None
    head = model.decode_head
    assert head.projections_source == rn_clip.jit
    assert head.text_embeddings.norm(dim=1).sub(1).abs().max() < 1e-5


def test_training_is_refused_with_a_pointer_to_maskclip_plus(rn_clip,
                                                             cache_dir):
    from mmseg.structures import SegDataSample
    model = build_maskclip(rn_clip, cache_dir=cache_dir).train()
    with pytest.raises(RuntimeError, match='MaskCLIP\\+'):
        model.loss(torch.randn(1, 3, 64, 64), [SegDataSample()])


def test_class_count_must_match(rn_clip):
    with pytest.raises(ValueError, match='3 class names but num_classes=4'):
        build_maskclip(rn_clip, num_classes=4, class_names=NAMES[:3])
    with pytest.raises(ValueError, match='at least 2 classes'):
        build_maskclip(rn_clip, ['sky'])
