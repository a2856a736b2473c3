"""CLIP towers: OpenAI files load key for key and reproduce CLIP's outputs."""
import subprocess
import sys

import pytest
import torch
from conftest import rn_backbone_cfg, text_cfg, vit_backbone_cfg
from mmseg.registry import MODELS

from denseclip.clip.checkpoint import (CLIPCheckpointError,
                                       split_clip_state_dict)
from denseclip.clip.tokenizer import tokenize


def build(cfg, pretrained=None):
    if pretrained is not None:
        cfg = dict(cfg, pretrained=pretrained)
    module = MODELS.build(cfg)
    module.init_weights()
    return module.eval()


@pytest.mark.parametrize('fmt', ['jit', 'state_dict'])
def test_resnet_tower_loads_every_key_and_matches_clip(rn_clip, fmt):
    path = getattr(rn_clip, fmt)
    backbone = build(rn_backbone_cfg(rn_clip.shape), path)
    report = backbone.load_report
    visual, _ = split_clip_state_dict(rn_clip.model.state_dict())
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.loaded) == sorted(visual)
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs = backbone(image)
        expected = rn_clip.model.encode_image(image)
    assert [o.shape[1] for o in outs[:4]] == [32, 64, 128, 256]
    global_feat, dense = outs[4]
    assert dense.shape == (2, 64, 2, 2)
    torch.testing.assert_close(global_feat, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('fmt', ['jit', 'state_dict'])
def test_vit_tower_loads_every_key_and_matches_clip(vit_clip, fmt):
    path = getattr(vit_clip, fmt)
    backbone = build(vit_backbone_cfg(vit_clip.shape), path)
    report = backbone.load_report
    visual, _ = split_clip_state_dict(vit_clip.model.state_dict())
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.loaded) == sorted(visual)
    assert report.not_in_clip and all(
        k.startswith('fpn') for k in report.not_in_clip)
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs = backbone(image)
        expected = vit_clip.model.encode_image(image)
    assert [tuple(o.shape[2:]) for o in outs[:4]] == [(16, 16), (8, 8),
                                                     (4, 4), (2, 2)]
    global_feat, dense = outs[4]
    assert dense.shape == (2, 32, 4, 4)
    torch.testing.assert_close(global_feat, expected, atol=1e-5, rtol=1e-5)


def test_vit_reference_class_embedding_option(vit_clip):
    """The compatibility option adds the class embedding a second time."""
    plain = build(vit_backbone_cfg(vit_clip.shape), vit_clip.jit)
    twice = build(vit_backbone_cfg(vit_clip.shape,
                                   add_class_embedding_twice=True),
                  vit_clip.jit)
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        x_plain, _ = plain.embed(image)
        x_twice, _ = twice.embed(image)
    # only the class token differs: ln_pre(2c + p0) vs ln_pre(c + p0)
    torch.testing.assert_close(x_plain[:, 1:], x_twice[:, 1:])
    c = plain.class_embedding
    expected = plain.ln_pre(2 * c + plain.positional_embedding[0])
    torch.testing.assert_close(x_twice[0, 0], expected)


@pytest.mark.parametrize('fmt', ['jit', 'state_dict'])
def test_text_tower_matches_clip(rn_clip, fmt):
    tower = build(text_cfg(rn_clip.shape), getattr(rn_clip, fmt))
    assert tower.load_report.missing == []
    tokens = tokenize(['a photo of a cat.', 'a diagram', 'sky'], 77)
    with torch.no_grad():
        torch.testing.assert_close(
            tower(tokens), rn_clip.model.encode_text(tokens),
            atol=1e-5, rtol=1e-5)


def test_context_encoder_with_word_contexts_equals_the_sentence(rn_clip):
    """Contexts equal to the embeddings of 'a photo of a' give CLIP's feature
    of 'a photo of a <name>': the prompt is inserted after the start token."""
    encoder = build(
        text_cfg(rn_clip.shape, type='CLIPTextContextEncoder',
                 context_length=13), rn_clip.jit)
    assert encoder.load_report.resized == ['positional_embedding']
    assert encoder.positional_embedding.shape[0] == 13
    prompt = tokenize(['a photo of a'], 77)[0, 1:5]  # 4 word tokens
    contexts = encoder.token_embedding(prompt)[None]  # [1, 4, C]
    names = tokenize(['cat', 'traffic light'], 9)
    with torch.no_grad():
        got = encoder(names, contexts)
        expected = rn_clip.model.encode_text(
            tokenize(['a photo of a cat', 'a photo of a traffic light'], 77))
    assert got.shape == (1, 2, rn_clip.shape['embed_dim'])
    torch.testing.assert_close(got[0], expected, atol=1e-5, rtol=1e-5)


def test_context_encoder_batches_contexts(rn_clip):
    encoder = build(
        text_cfg(rn_clip.shape, type='CLIPTextContextEncoder',
                 context_length=13), rn_clip.jit)
    names = tokenize(['cat', 'dog', 'sky'], 5)
    contexts = torch.randn(2, 8, rn_clip.shape['transformer_width'])
    with torch.no_grad():
        both = encoder(names, contexts)
        second = encoder(names, contexts[1:])
    assert both.shape == (2, 3, rn_clip.shape['embed_dim'])
    torch.testing.assert_close(both[1:], second, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='5 name tokens \\+ 4 contexts'):
        encoder(names, contexts[:, :4])


def test_positional_embedding_resized_for_larger_input(rn_clip, vit_clip):
    rn = build(rn_backbone_cfg(rn_clip.shape, input_resolution=128),
               rn_clip.jit)
    assert rn.load_report.resized == ['attnpool.positional_embedding']
    assert rn.attnpool.positional_embedding.shape == (17, 256)
    orig = rn_clip.model.visual.attnpool.positional_embedding
    # the class position is kept, the grid is interpolated bilinearly
    torch.testing.assert_close(rn.attnpool.positional_embedding[0], orig[0])
    grid = orig[1:].reshape(1, 2, 2, -1).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(
        grid, size=(4, 4), mode='bilinear', align_corners=False)
    torch.testing.assert_close(rn.attnpool.positional_embedding[1:],
                               resized.flatten(2)[0].t())
    with torch.no_grad():
        outs = rn(torch.randn(1, 3, 128, 128))
    assert outs[4][1].shape == (1, 64, 4, 4)

    vit = build(vit_backbone_cfg(vit_clip.shape, input_resolution=96),
                vit_clip.jit)
    assert vit.load_report.resized == ['positional_embedding']
    assert vit.positional_embedding.shape == (37, 64)
    with torch.no_grad():
        outs = vit(torch.randn(1, 3, 96, 96))
    assert outs[4][1].shape == (1, 32, 6, 6)


def test_init_cfg_pretrained_loads_like_pretrained(rn_clip):
    by_arg = build(rn_backbone_cfg(rn_clip.shape), rn_clip.jit)
    by_init_cfg = build(
        rn_backbone_cfg(
            rn_clip.shape,
            init_cfg=dict(type='Pretrained', checkpoint=rn_clip.jit)))
    assert by_init_cfg.load_report.missing == []
    for (k, a), b in zip(by_arg.state_dict().items(),
                         by_init_cfg.state_dict().values()):
        assert torch.equal(a, b), k


def test_plain_resnet_leaves_attention_pool_out(rn_clip):
    backbone = build(rn_backbone_cfg(rn_clip.shape, type='CLIPResNet'),
                     rn_clip.jit)
    report = backbone.load_report
    assert report.unexpected == [] and report.missing == []
    assert report.unused and all(
        k.startswith('attnpool.') for k in report.unused)
    assert len(backbone(torch.randn(1, 3, 64, 64))) == 4


def test_missing_file_is_an_error_with_a_hint(tmp_path):
    path = str(tmp_path / 'RN50.pt')
    with pytest.raises(FileNotFoundError,
                       match=r'RN50\.pt does not exist.*download_clip\.py RN50'):
        build(dict(type='CLIPResNet', layers=[1, 1, 1, 1], width=8), path)


def test_a_file_that_is_not_a_checkpoint_is_an_error(tmp_path):
    path = tmp_path / 'notes.pt'
    path.write_text('not a checkpoint')
    with pytest.raises(CLIPCheckpointError,
                       match='notes.pt is not a CLIP checkpoint'):
        build(dict(type='CLIPResNet', layers=[1, 1, 1, 1], width=8), str(path))


def test_other_architecture_names_key_and_both_shapes(rn_clip, vit_clip,
                                                      tmp_path):
    from denseclip.toy.clip_model import build_openai_clip, write_clip_checkpoint

    # an 'RN101' of the toy family: deeper third stage, 512-d output
    shape = dict(rn_clip.shape, vision_layers=(1, 1, 2, 1), embed_dim=32)
    deeper = write_clip_checkpoint(
        build_openai_clip(**shape), str(tmp_path / 'RN101.pt'))
    with pytest.raises(CLIPCheckpointError) as err:
        build(rn_backbone_cfg(rn_clip.shape), deeper)
    msg = str(err.value)
    assert 'RN101.pt' in msg and "'attnpool.c_proj.weight'" in msg
    assert '(32, 256)' in msg and '(64, 256)' in msg

    with pytest.raises(CLIPCheckpointError, match="'layer3.1.conv1.weight'"):
        build(rn_backbone_cfg(rn_clip.shape, type='CLIPResNet'), deeper)

    with pytest.raises(CLIPCheckpointError, match='does not fit'):
        build(vit_backbone_cfg(vit_clip.shape), rn_clip.jit)


def test_missing_tensor_is_an_error(rn_clip, tmp_path):
    state = dict(rn_clip.model.state_dict())
    del state['visual.layer2.0.conv2.weight']
    path = str(tmp_path / 'broken.pth')
    torch.save({'state_dict': state}, path)
    with pytest.raises(CLIPCheckpointError,
                       match=r"broken.pth lacks 1 visual.*'layer2.0.conv2.weight'"):
        build(rn_backbone_cfg(rn_clip.shape), path)


@pytest.mark.parametrize('width,heads', [(64, 32), (80, 40), (96, 48)])
def test_attention_pool_heads_follow_clip(width, heads):
    """RN50/RN101: 32 heads, RN50x4: 40, RN50x16: 48 (the reference fixes 32)."""
    backbone = MODELS.build(dict(type='CLIPResNetWithAttention',
                                 layers=[1, 1, 1, 1], width=width,
                                 output_dim=64, input_resolution=64))
    assert backbone.attnpool.num_heads == heads


def test_legacy_arguments_accepted_unknown_rejected():
    MODELS.build(dict(type='CLIPResNet', layers=[1, 1, 1, 1], width=8,
                      style='pytorch'))
    with pytest.raises(TypeError, match="unexpected argument.*'depth'"):
        MODELS.build(dict(type='CLIPResNet', layers=[1, 1, 1, 1], width=8,
                          depth=50))


def test_no_uninitialised_text_parameters():
    tower = MODELS.build(dict(type='CLIPTextContextEncoder', context_length=13,
                              transformer_width=32, transformer_heads=4,
                              transformer_layers=1, embed_dim=16))
    for name, p in tower.named_parameters():
        assert torch.isfinite(p).all(), name
    assert 0.005 < tower.positional_embedding.std() < 0.02
    assert tower.text_projection.std().item() == pytest.approx(32**-0.5, rel=0.2)


def test_tokenize_rejects_long_class_names_unless_truncating():
    with pytest.raises(ValueError, match="'chest of drawers and more' needs"):
        tokenize(['sky', 'chest of drawers and more'], 5)
    tokens = tokenize(['chest of drawers and more'], 5, truncate=True)
    assert tokens.shape == (1, 5) and tokens[0, -1] == 49407


@pytest.mark.integration
@pytest.mark.parametrize('first', ['denseclip', 'mmseg.models'])
def test_import_order_keeps_both_text_encoders(first):
    second = 'mmseg.models' if first == 'denseclip' else 'denseclip'
    code = (f'import {first}; import {second}\n'
            'from mmseg.registry import MODELS\n'
            "san = MODELS.get('CLIPTextEncoder')\n"
            "assert san.__module__.startswith('mmseg.models'), san\n"
            "for name in ('CLIPTextTower', 'CLIPTextContextEncoder', "
            "'CLIPResNet', 'CLIPResNetWithAttention', 'CLIPVisionTransformer'):\n"
            "    assert MODELS.get(name).__module__.startswith('denseclip'), name\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'


def test_full_size_rn50_shapes():
    """RN50 at 512: shapes only, so on the meta device (no memory, no
    initialisation, no arithmetic)."""
    with torch.device('meta'):
        backbone = MODELS.build(
            dict(type='CLIPResNetWithAttention', layers=[3, 4, 6, 3],
                 output_dim=1024, input_resolution=512, width=64)).eval()
        assert backbone.attnpool.num_heads == 32
        outs = backbone(torch.randn(1, 3, 512, 512))
    assert [tuple(o.shape) for o in outs[:4]] == [(1, 256, 128, 128),
                                                  (1, 512, 64, 64),
                                                  (1, 1024, 32, 32),
                                                  (1, 2048, 16, 16)]
    assert outs[4][0].shape == (1, 1024)
    assert outs[4][1].shape == (1, 1024, 16, 16)


def test_full_size_vit_b16_shapes():
    """ViT-B/16 configured for 640 (40x40 grid) with a smaller input (the
    positional embedding resized); shapes only, on the meta device."""
    with torch.device('meta'):
        backbone = MODELS.build(
            dict(type='CLIPVisionTransformer', input_resolution=640,
                 patch_size=16, width=768, layers=12, heads=12,
                 output_dim=512, out_indices=[3, 5, 7, 11],
                 get_embeddings=True)).eval()
        assert backbone.positional_embedding.shape == (1601, 768)
        outs = backbone(torch.randn(1, 3, 128, 128))
    assert [tuple(o.shape) for o in outs[:4]] == [(1, 768, 32, 32),
                                                  (1, 768, 16, 16),
                                                  (1, 768, 8, 8),
                                                  (1, 768, 4, 4)]
    assert outs[4][0].shape == (1, 512)
    assert outs[4][1].shape == (1, 512, 8, 8)
