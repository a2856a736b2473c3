"""Attention head counts: read from a TorchScript CLIP file (which records
them in its code), checked against counts given in flags or configs, said in
the demo's header; OpenAI's width // 64 assumed only for a plain state dict,
which records none."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from denseclip_helpers import load_tool
from mmseg.registry import MODELS

from denseclip.apis import maskclip_model_cfg
from denseclip.clip.checkpoint import (CLIPCheckpointError, clip_file_heads,
                                       scripted_attention_heads)
from denseclip.clip.arch import (HEADS_BY_RULE, HEADS_FROM_FILE, HEADS_GIVEN,
                                 read_clip_arch)
from denseclip.clip.tokenizer import tokenize
from denseclip.clip.zero_shot import build_clip_text_tower
from denseclip.toy.clip_model import build_openai_clip, write_clip_checkpoint

# the toy ViT CLIP's heads (4 in both towers) where OpenAI's rule gives 2
# (image, width 128) and 1 (text, width 64); one block each, 32 px
FOUR_HEADS = dict(embed_dim=32, image_resolution=32, vision_layers=1,
                  vision_width=128, vision_patch_size=16, vision_heads=4,
                  context_length=77, transformer_width=64,
                  transformer_heads=4, transformer_layers=1)

# the activation note that ends a file's description (issue 18 item 2)
JIT = ("; activation quick_gelu (an OpenAI TorchScript archive: OpenAI's "
       'CLIPs run QuickGELU)')
ASSUMED = ("; activation quick_gelu (assumed: neither the file nor the table "
           "of known files says; set activation='gelu' if these weights were "
           'trained with GELU (LAION, DataComp))')


@pytest.fixture(scope='module')
def four_heads(tmp_path_factory):
    """The model and its two files: TorchScript (records 4 and 4) and a
    plain state dict (records nothing)."""
    folder = tmp_path_factory.mktemp('four_heads')
    model = build_openai_clip(seed=3, **FOUR_HEADS)
    jit = write_clip_checkpoint(model, str(folder / 'toy_vit4.pt'))
    state_dict = write_clip_checkpoint(model, str(folder / 'toy_vit4.pth'),
                                       torchscript=False)
    return SimpleNamespace(model=model, jit=jit, state_dict=state_dict)


def test_torchscript_files_record_their_heads(four_heads, rn_clip):
    assert clip_file_heads(four_heads.jit) == dict(visual=4, text=4)
    assert clip_file_heads(four_heads.state_dict) == {}
    # a ResNet's attention pool: width * 32 // 64
    width = rn_clip.shape['vision_width']
    assert clip_file_heads(rn_clip.jit) == dict(
        visual=width * 32 // 64, text=rn_clip.shape['transformer_heads'])


def test_heads_of_scripted_and_old_traced_attention():
    """A scripted nn.MultiheadAttention keeps num_heads; OpenAI's archives
    (traced by torch 1.7) compute head_dim = floor_divide(embed_dim, c0) from
    the input's size, c0 a constant of the graph."""
    scripted = torch.jit.script(torch.nn.MultiheadAttention(48, 6))
    assert scripted_attention_heads(scripted) == 6
    openai_1_7 = torch._C.parse_ir('''
        graph(%self : Tensor, %argument_1 : Tensor):
          %2 : int = prim::Constant[value=2]()
          %c0 : Long(requires_grad=0, device=cpu) = prim::Constant[value={12}]()
          %size : int = aten::size(%argument_1, %2)
          %embed_dim : Tensor = prim::NumToTensor(%size)
          %head_dim : Tensor = aten::floor_divide(%embed_dim, %c0)
          return (%head_dim)''', parse_tensor_constants=True)
    assert scripted_attention_heads(SimpleNamespace(graph=openai_1_7)) == 12
    # a division by a constant that is not of the input's size: not heads
    other = torch._C.parse_ir('''
        graph(%self : Tensor, %x : Tensor):
          %c0 : Long(requires_grad=0, device=cpu) = prim::Constant[value={12}]()
          %y : Tensor = aten::floor_divide(%x, %c0)
          return (%y)''', parse_tensor_constants=True)
    assert scripted_attention_heads(SimpleNamespace(graph=other)) is None


def test_arch_takes_the_files_heads_and_checks_given_ones(four_heads):
    arch = read_clip_arch(four_heads.jit)
    assert (arch.visual['heads'], arch.text['transformer_heads']) == (4, 4)
    assert arch.heads_from == dict(visual=HEADS_FROM_FILE, text=HEADS_FROM_FILE)
    assert '4 heads, 32px' in arch.describe()
    assert arch.describe().endswith(
        'text width 64, 1 layer, 4 heads; heads read from the file' + JIT)
    # the same counts given: fine; others: an error naming both and the file
    assert read_clip_arch(four_heads.jit, 4, 4).visual['heads'] == 4
    with pytest.raises(ValueError) as err:
        read_clip_arch(four_heads.jit, vision_heads=2,
                       options=('--vision-heads', '--text-heads'))
    assert str(err.value).startswith(
        f'{four_heads.jit} records 4 attention heads in its image tower, but '
        f'--vision-heads=2 was given')
    with pytest.raises(ValueError, match=r'records 4 attention heads in its '
                       r'text tower, but text_heads=1 was given'):
        read_clip_arch(four_heads.jit, text_heads=1)

    # a state dict records none: OpenAI's rule, said so, or the given counts
    rule = read_clip_arch(four_heads.state_dict,
                          options=('--vision-heads', '--text-heads'))
    assert (rule.visual['heads'], rule.text['transformer_heads']) == (2, 1)
    assert rule.heads_from == dict(visual=HEADS_BY_RULE, text=HEADS_BY_RULE)
    assert rule.describe().endswith(
        "1 head; heads assumed by OpenAI's rule, width // 64, as the file "
        'does not record them (--vision-heads / --text-heads if its model '
        'has others)' + ASSUMED)
    given = read_clip_arch(four_heads.state_dict, 4,
                           options=('--vision-heads', '--text-heads'))
    assert given.heads_from == dict(visual=HEADS_GIVEN, text=HEADS_BY_RULE)
    assert 'image heads as given, text heads assumed by' in given.describe()
    assert given.describe().endswith(
        '(--text-heads if its model has others)' + ASSUMED)
    with pytest.raises(ValueError, match='vision_heads=3 does not divide the '
                       'image width 128'):
        read_clip_arch(four_heads.state_dict, 3)


def test_towers_from_the_file_compute_what_the_clip_model_computes(
        four_heads):
    """With the file's heads, the towers give the CLIP model's own image and
    text features (with OpenAI's rule they would not: 2 and 1 heads)."""
    model = four_heads.model
    tokens = tokenize(['a photo of a cat.', 'a red car'], 77)
    text = build_clip_text_tower(four_heads.jit)
    with torch.no_grad():
        expected = model.encode_text(tokens)
        torch.testing.assert_close(text(tokens), expected, rtol=1e-4,
                                   atol=1e-5)
    visual_cfg = read_clip_arch(four_heads.jit).visual
    visual_cfg.update(get_embeddings=True, pretrained=four_heads.jit)
    visual = MODELS.build(visual_cfg)
    visual.init_weights()
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(visual.eval()(image)[-1][0],
                                   model.encode_image(image), rtol=1e-4,
                                   atol=1e-5)
    # the rule's counts compute something else
    rule_text = build_clip_text_tower(four_heads.state_dict)
    with torch.no_grad():
        assert (F.normalize(rule_text(tokens), dim=-1) -
                F.normalize(expected, dim=-1)).abs().max() > 1e-3


def test_a_tower_built_with_other_heads_does_not_load(four_heads):
    """A config's count that the file contradicts: an error naming the file,
    both counts and the setting (the weights would fit either way)."""
    cfg = read_clip_arch(four_heads.jit).visual
    cfg.update(heads=2, pretrained=four_heads.jit)
    with pytest.raises(CLIPCheckpointError) as err:
        MODELS.build(cfg).init_weights()
    assert str(err.value).startswith(
        f'{four_heads.jit} records 4 attention heads in its visual tower, but '
        'CLIPVisionTransformer was built with 2 (heads=2)')
    text_cfg = read_clip_arch(four_heads.jit).text
    text_cfg.update(transformer_heads=1, pretrained=four_heads.jit)
    with pytest.raises(CLIPCheckpointError, match=r'records 4 attention heads '
                       r'in its text tower, but CLIPTextTower was built with '
                       r'1 \(transformer_heads=1\).*Build it with '
                       r'transformer_heads=4'):
        MODELS.build(text_cfg).init_weights()
    # a state dict cannot tell: it loads
    text_cfg.update(pretrained=four_heads.state_dict)
    MODELS.build(text_cfg).init_weights()


def test_maskclip_model_takes_the_files_heads(four_heads):
    cfg = maskclip_model_cfg(four_heads.jit, ['cat', 'sky'], method='naclip')
    assert cfg.backbone.heads == 4
    assert cfg.decode_head.text_encoder == dict(transformer_heads=4)
    with pytest.raises(ValueError, match=r'records 4 attention heads in its '
                       r'text tower, but text_encoder.transformer_heads=2'):
        maskclip_model_cfg(four_heads.jit, ['cat', 'sky'],
                           text_encoder=dict(transformer_heads=2))
    rule = maskclip_model_cfg(four_heads.state_dict, ['cat', 'sky'])
    assert rule.backbone.heads == 2
    assert rule.decode_head.text_encoder == dict(transformer_heads=1)


def test_demo_header_says_the_heads_and_where_they_came_from(four_heads,
                                                            tmp_path,
                                                            capsys):
    demo = load_tool('maskclip_demo')
    base = ['photo.png', '--classes', 'cat,sky', '--out', 'x.png',
            '--templates', 'single', '--cache-dir', str(tmp_path)]

    def header(clip, *flags):
        args = demo.make_parser().parse_args(base + ['--clip', clip, *flags])
        demo.build_model(args, demo.parse_class_names(args, pytest.fail))
        return capsys.readouterr().out.splitlines()[0]

    assert header(four_heads.jit) == (
        f'{four_heads.jit}: ViT (patch 16, width 128, 1 layer, 4 heads, '
        '32px), embedding 32; text width 64, 1 layer, 4 heads; heads read '
        'from the file' + JIT)
    assert header(four_heads.state_dict).endswith(
        "2 heads, 32px), embedding 32; text width 64, 1 layer, 1 head; heads "
        "assumed by OpenAI's rule, width // 64, as the file does not record "
        'them (--vision-heads / --text-heads if its model has others)' +
        ASSUMED)
    assert header(four_heads.state_dict, '--vision-heads', '4',
                  '--text-heads', '4').endswith(
        '4 heads; heads as given' + ASSUMED)
    photo = tmp_path / 'photo.png'
    photo.write_bytes(cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1])
    with pytest.raises(SystemExit) as exit_:
        demo.main([str(photo)] + base[1:] + ['--clip', four_heads.jit,
                                             '--vision-heads', '2'])
    assert exit_.value.code == 2
    assert (f'{four_heads.jit} records 4 attention heads in its image tower, '
            'but --vision-heads=2 was given') in capsys.readouterr().err


def test_ovss_benchmark_clip_option_takes_the_files_heads(four_heads):
    """tools/ovss_benchmark.py --clip: the image tower's heads from the
    TorchScript file (4), not OpenAI's rule (2)."""
    tool = load_tool('ovss_benchmark')
    options = dict(o.split('=', 1) for o in tool.clip_options(four_heads.jit))
    assert options['model.backbone.heads'] == '4'
    assert options['model.backbone.width'] == '128'
    options = dict(o.split('=', 1)
                   for o in tool.clip_options(four_heads.state_dict))
    assert options['model.backbone.heads'] == '2'  # nothing recorded: rule
