"""Three CLIP file layouts, one loader: transformers' CLIPModel against
transformers itself, open_clip's files against the OpenAI file of the same
weights, and the activation (QuickGELU / GELU) from config, file or table."""
import json
import shutil

import pytest
import torch
import transformers
from conftest import text_cfg, vit_backbone_cfg
from mmseg.registry import MODELS
from safetensors.torch import save_file

from denseclip.clip.activation import QuickGELU
from denseclip.clip.arch import read_clip_arch
from denseclip.clip.checkpoint import (CLIPCheckpointError,
                                       load_clip_checkpoint, read_clip_file)

# widths whose heads are not OpenAI's width // 64, so they must come from
# config.json; patch 14 on a 28px image (2 x 2 tokens)
VOCAB, LENGTH = 100, 16


def hf_clip(hidden_act, seed=0):
    """A tiny random transformers CLIPModel in eval mode."""
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=VOCAB, hidden_size=32,
                         intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=LENGTH,
                         hidden_act=hidden_act, eos_token_id=VOCAB - 1,
                         bos_token_id=VOCAB - 2, pad_token_id=0),
        vision_config=dict(hidden_size=64, intermediate_size=256,
                           num_hidden_layers=2, num_attention_heads=4,
                           image_size=28, patch_size=14,
                           hidden_act=hidden_act),
        projection_dim=24)
    torch.manual_seed(seed)
    model = transformers.CLIPModel(config).eval()
    # transformers initialises LayerNorms to (1, 0) and biases to 0:
    # randomise everything, so a swapped or untransposed tensor shows
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.2)
    return model


def tokens(count=3):
    """Token ids ending at an end-of-text token (the highest id), then 0s."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB - 2, (count, LENGTH), generator=gen)
    for row, end in enumerate(range(4, 4 + 3 * count, 3)):
        ids[row, end] = VOCAB - 1
        ids[row, end + 1:] = 0
    return ids


def features(out):
    """transformers 5 returns a model output from get_*_features."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def build(cfg, pretrained):
    module = MODELS.build(dict(cfg, pretrained=pretrained))
    module.init_weights()
    return module.eval()


def our_towers(path, **vision):
    arch = read_clip_arch(path)
    visual = dict(arch.visual, get_embeddings=True, **vision)
    return build(visual, path), build(arch.text, path), arch


@pytest.mark.parametrize('weights', ['model.safetensors', 'pytorch_model.bin'])
@pytest.mark.parametrize('act', ['quick_gelu', 'gelu'])
def test_transformers_folder_matches_clipmodel(tmp_path, act, weights):
    model = hf_clip(act)
    model.save_pretrained(tmp_path)
    if weights == 'pytorch_model.bin':
        (tmp_path / 'model.safetensors').unlink()
        torch.save(model.state_dict(), tmp_path / weights)
    image, text = our_towers(str(tmp_path))[:2]
    assert image.transformer.resblocks[0].attn.num_heads == 4
    assert text.transformer.resblocks[0].attn.num_heads == 2
    expected_module = QuickGELU if act == 'quick_gelu' else torch.nn.GELU
    assert isinstance(image.transformer.resblocks[0].mlp.gelu,
                      expected_module)
    assert image.load_report.layout == 'transformers'
    assert image.load_report.activation.startswith(f'{act} (')
    assert 'config.json says hidden_act' in text.load_report.activation

    pixels = torch.randn(2, 3, 28, 28)
    ids = tokens()
    with torch.no_grad():
        ref_image = features(model.get_image_features(pixel_values=pixels))
        ref_text = features(model.get_text_features(input_ids=ids))
        vision_out = model.vision_model(pixel_values=pixels,
                                        output_hidden_states=True)
        global_feat, dense = image(pixels)[-1]
        ours_text = text(ids)
    torch.testing.assert_close(global_feat, ref_image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_text, ref_text, atol=1e-5, rtol=1e-5)
    # the dense features: every patch token through ln_post and proj
    ref_dense = model.visual_projection(model.vision_model.post_layernorm(
        vision_out.last_hidden_state[:, 1:]))
    torch.testing.assert_close(dense.flatten(2).transpose(1, 2), ref_dense,
                               atol=1e-5, rtol=1e-5)
    # every block's tokens (what each training-free method reads)
    with torch.no_grad():
        x, _ = image.embed(pixels)
        torch.testing.assert_close(x, vision_out.hidden_states[0],
                                   atol=1e-5, rtol=1e-5)
        for block, ref in zip(image.transformer.resblocks,
                              vision_out.hidden_states[1:]):
            x = block(x)
            torch.testing.assert_close(x, ref, atol=1e-5, rtol=1e-5)


def test_transformers_folder_maskclip_value_path(tmp_path):
    """MaskCLIP's dense features (the last block's value path) equal the
    same arithmetic on transformers' own modules."""
    model = hf_clip('gelu')
    model.save_pretrained(tmp_path)
    arch = read_clip_arch(str(tmp_path))
    image = build(dict(arch.visual, dense_last_block=dict(mode='maskclip')),
                  str(tmp_path))
    pixels = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        dense = image(pixels)[-1]['dense']
        hidden = model.vision_model(pixel_values=pixels,
                                    output_hidden_states=True).hidden_states
        last = model.vision_model.encoder.layers[-1]
        # MaskCLIP's last block: attention replaced by its value path, the
        # residual and the MLP kept
        value = last.self_attn.v_proj(last.layer_norm1(hidden[-2]))
        y = hidden[-2] + last.self_attn.out_proj(value)
        y = y + last.mlp(last.layer_norm2(y))
        ref = model.vision_model.post_layernorm(y)
    torch.testing.assert_close(dense.flatten(2).transpose(1, 2), ref[:, 1:],
                               atol=1e-5, rtol=1e-5)


def open_clip_variants(openai_sd, folder):
    """The same weights as open_clip names and saves them."""
    plain = {k: v.clone() for k, v in openai_sd.items()
             if not isinstance(v, torch.Tensor) or v.is_floating_point()}
    text_keys = ('transformer.', 'token_embedding.', 'positional_embedding',
                 'ln_final.', 'text_projection')
    custom_text = {('text.' + k if k.startswith(text_keys) else k): v
                   for k, v in plain.items()}
    paths = {}
    paths['bin'] = folder / 'open_clip_pytorch_model.bin'
    torch.save(plain, paths['bin'])
    paths['pt_state_dict'] = folder / 'epoch_3.pt'
    torch.save({'epoch': 3, 'name': 'run',
                'state_dict': {'module.' + k: v for k, v in plain.items()}},
               paths['pt_state_dict'])
    paths['pt_custom_text'] = folder / 'custom_text.pt'
    torch.save(custom_text, paths['pt_custom_text'])
    paths['safetensors'] = folder / 'sub' / 'open_clip_model.safetensors'
    paths['safetensors'].parent.mkdir()
    save_file({k: v.contiguous() for k, v in plain.items()},
              str(paths['safetensors']))
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize('variant', ['bin', 'pt_state_dict', 'pt_custom_text',
                                     'safetensors'])
def test_open_clip_files_load_as_the_openai_file(vit_clip, tmp_path, variant):
    openai_sd = load_clip_checkpoint(vit_clip.state_dict)
    path = open_clip_variants(openai_sd, tmp_path)[variant]
    info = read_clip_file(path)
    assert info.layout == 'open_clip'
    assert set(info.state_dict) == set(openai_sd)
    for key, value in openai_sd.items():
        torch.testing.assert_close(info.state_dict[key], value, atol=0,
                                   rtol=0)
    shape = vit_clip.shape
    pixels, ids = torch.randn(1, 3, 64, 64), tokens(2) % 50
    outputs = []
    for file in (vit_clip.state_dict, path):
        image = build(vit_backbone_cfg(shape, out_indices=()), file)
        text = build(text_cfg(shape), file)
        with torch.no_grad():
            outputs.append((image(pixels)[-1][0], text(ids)))
    torch.testing.assert_close(outputs[0], outputs[1], atol=0, rtol=0)


def test_open_clip_text_projection_as_linear_is_transposed(vit_clip,
                                                           tmp_path):
    openai_sd = load_clip_checkpoint(vit_clip.state_dict)
    sd = {('text.' + k if k.startswith(('transformer.', 'token_embedding',
                                        'positional_embedding', 'ln_final'))
           else k): v for k, v in openai_sd.items()}
    sd['text.text_projection.weight'] = sd.pop('text_projection').t()
    path = tmp_path / 'linear_proj.bin'
    torch.save(sd, path)
    torch.testing.assert_close(
        read_clip_file(str(path)).state_dict['text_projection'],
        openai_sd['text_projection'], atol=0, rtol=0)


def test_open_clip_config_states_activation_and_heads(vit_clip, tmp_path):
    openai_sd = load_clip_checkpoint(vit_clip.state_dict)
    path = open_clip_variants(openai_sd, tmp_path)['safetensors']
    config = tmp_path / 'sub' / 'open_clip_config.json'
    # open_clip runs GELU where quick_gelu is not set; 32-channel heads
    config.write_text(json.dumps({'model_cfg': {
        'embed_dim': 32,
        'vision_cfg': {'width': 64, 'head_width': 32, 'patch_size': 16},
        'text_cfg': {'width': 32, 'heads': 4}}}))
    arch = read_clip_arch(str(config.parent))
    assert arch.visual['heads'] == 2 and arch.heads_from['visual'] == 'file'
    assert 'activation gelu (' in arch.describe()
    assert 'open_clip_config.json says no quick_gelu' in arch.describe()
    image = build(dict(arch.visual, get_embeddings=True), path)
    assert isinstance(image.transformer.resblocks[0].mlp.gelu, torch.nn.GELU)
    config.write_text(json.dumps({'model_cfg': {
        'quick_gelu': True, 'text_cfg': {'width': 32, 'heads': 4}}}))
    text = build(text_cfg(vit_clip.shape), str(config.parent))
    assert text.load_report.activation.startswith('quick_gelu (')
    assert 'quick_gelu: true' in text.load_report.activation


def test_openai_files_activation_from_file_table_or_assumed(vit_clip,
                                                            tmp_path):
    shape = vit_clip.shape
    # a TorchScript archive states QuickGELU
    text = build(text_cfg(shape), vit_clip.jit)
    assert 'TorchScript archive' in text.load_report.activation
    assert text.load_report.layout == 'openai'
    # a state dict under an OpenAI file name: the table of known files
    known = tmp_path / 'ViT-B-16.pt'
    shutil.copy(vit_clip.state_dict, known)
    text = build(text_cfg(shape), str(known))
    assert text.load_report.activation == (
        'quick_gelu (ViT-B-16.pt is ViT-B/16 (openai layout) in the named '
        'sources table)')
    # any other state dict: QuickGELU assumed, and said so
    text = build(text_cfg(shape), vit_clip.state_dict)
    assert text.load_report.activation.startswith('quick_gelu (assumed')
    assert 'activation: quick_gelu (assumed' in str(text.load_report)
    # a config's choice where the file says nothing; it changes the features
    gelu = build(text_cfg(shape, activation='gelu'), vit_clip.state_dict)
    assert gelu.load_report.activation == 'gelu (as given)'
    ids = tokens(2) % 50
    with torch.no_grad():
        assert not torch.allclose(gelu(ids), text(ids), atol=1e-4)


def test_activation_given_against_the_files_statement_is_refused(
        vit_clip, tmp_path):
    with pytest.raises(CLIPCheckpointError) as err:
        build(text_cfg(vit_clip.shape, activation='gelu'), vit_clip.jit)
    message = str(err.value)
    assert vit_clip.jit in message and "activation='gelu'" in message
    assert "states 'quick_gelu'" in message and 'Leave activation out' in message
    hf_clip('gelu').save_pretrained(tmp_path)
    arch = read_clip_arch(str(tmp_path))
    with pytest.raises(CLIPCheckpointError,
                       match=r"states 'gelu' \(.*config.json says "
                       r'hidden_act'):
        build(dict(arch.visual, activation='quick_gelu'), str(tmp_path))
    with pytest.raises(ValueError, match="activation='quick_gelu' was asked"):
        read_clip_arch(str(tmp_path), activation='quick_gelu')
    with pytest.raises(ValueError, match='activation must be one of'):
        MODELS.build(text_cfg(vit_clip.shape, activation='relu'))


def test_a_file_of_another_layout_than_its_name_says(tmp_path, vit_clip):
    model = hf_clip('quick_gelu')
    named_openai = tmp_path / 'ViT-L-14.pt'
    torch.save(model.state_dict(), named_openai)
    with pytest.raises(CLIPCheckpointError) as err:
        read_clip_file(str(named_openai))
    assert str(named_openai) in str(err.value)
    assert "named as OpenAI's file but holds transformers' CLIPModel" in \
        str(err.value)
    assert 'in a folder with its config.json' in str(err.value)
    # CLIPModel's file name and config.json, OpenAI's keys
    folder = tmp_path / 'hf'
    model.save_pretrained(folder)
    shutil.copy(vit_clip.state_dict, folder / 'pytorch_model.bin')
    (folder / 'model.safetensors').unlink()
    with pytest.raises(CLIPCheckpointError,
                       match=r"pytorch_model.bin is named as transformers' "
                       r'CLIPModel weights .*Rename it'):
        read_clip_file(str(folder))


def test_a_transformers_folder_without_config_json(tmp_path):
    hf_clip('gelu').save_pretrained(tmp_path)
    (tmp_path / 'config.json').unlink()
    for path in (tmp_path, tmp_path / 'model.safetensors'):
        with pytest.raises(CLIPCheckpointError) as err:
            read_clip_file(str(path))
        assert str(tmp_path / 'model.safetensors') in str(err.value)
        assert 'its folder has no config.json' in str(err.value)
        assert 'put the config.json of the same model' in str(err.value)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError,
                       match=f'{empty} is a folder without CLIP weights'):
        read_clip_file(str(empty))


def test_unmapped_keys_are_named_in_the_error(tmp_path):
    model = hf_clip('gelu')
    model.save_pretrained(tmp_path)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd['vision_model.encoder.layers.0.extra.weight'] = torch.zeros(3)
    del sd['text_model.encoder.layers.1.self_attn.k_proj.weight']
    save_file(sd, str(tmp_path / 'model.safetensors'))
    arch_cfg = read_clip_arch(str(tmp_path)).visual
    with pytest.raises(CLIPCheckpointError,
                       match=r"'vision_model.encoder.layers.0.extra.weight' "
                       r"\(no OpenAI name in the transformers' CLIPModel "
                       r'layout\)'):
        build(arch_cfg, str(tmp_path))
    with pytest.raises(CLIPCheckpointError,
                       match=r"first 'transformer.resblocks.1.attn."
                       r"in_proj_weight'"):
        build(read_clip_arch(str(tmp_path)).text, str(tmp_path))


def test_timm_image_towers_are_refused(tmp_path, vit_clip):
    sd = dict(load_clip_checkpoint(vit_clip.state_dict))
    sd['visual.trunk.blocks.0.norm1.weight'] = torch.ones(4)
    path = tmp_path / 'open_clip_pytorch_model.bin'
    torch.save(sd, path)
    with pytest.raises(CLIPCheckpointError,
                       match=r'image tower built by timm'):
        read_clip_file(str(path))


@pytest.mark.parametrize('name, expected', [
    ('ViT-B-16/laion2b_s34b_b88k', 'gelu'),
    ('ViT-B-16/metaclip_fullcc', 'quick_gelu'),
    ('ViT-B-16/dfn2b', 'quick_gelu')])
def test_the_sources_table_gives_the_activation_of_a_hub_file(
        vit_clip, tmp_path, name, expected):
    """A state dict that says nothing about its activation, saved where
    download_clip.py puts that weight set or where huggingface_hub caches
    it: the table's activation for it, named in the load report."""
    from denseclip.clip import files
    entry = files.get(name)
    source = entry.sources[0]
    state = {k: v.contiguous()
             for k, v in load_clip_checkpoint(vit_clip.state_dict).items()
             if v.is_floating_point()}

    def write(path):
        if path.suffix == '.safetensors':
            save_file(state, str(path))
        else:
            torch.save(state, path)

    saved = tmp_path / files.dest_name(entry, source, source.filenames[0])
    write(saved)
    org, repo = source.repo.split('/')
    cached = (tmp_path / f'models--{org}--{repo}' / 'snapshots' / 'abc123' /
              source.filenames[0])
    cached.parent.mkdir(parents=True)
    write(cached)
    for path in (saved, cached):
        text = build(text_cfg(vit_clip.shape), str(path))
        assert text.load_report.activation == (
            f'{expected} ({path.name} is {name} (open_clip layout) in the '
            'named sources table)')
        block = text.transformer.resblocks[0].mlp.gelu
        assert isinstance(block, QuickGELU) == (expected == 'quick_gelu')
