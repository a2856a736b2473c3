"""Every way a VFM file can be wrong says so, naming the file and what to
do; and the module never runs on random weights."""
import argparse
import json
import os.path as osp

import pytest
import torch
from safetensors.torch import save_file

from denseclip.clip.weights_guard import RandomWeightsError
from denseclip.vfm import (VFMCheckpointError, VFMRandomWeightsError,
                           VisionFoundationModel, read_vfm_arch)
from denseclip.vfm.files import find_vfm_file

# a DINO ViT in DINO's own layout, written here: patch 8, width 16, 1 layer,
# a 2 x 2 grid (16 px)
W, P = 16, 8


def _dino_state(layers: int = 1, width: int = W) -> dict:
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen)

    state = {'cls_token': rnd(1, 1, width), 'pos_embed': rnd(1, 5, width),
             'patch_embed.proj.weight': rnd(width, 3, P, P),
             'patch_embed.proj.bias': rnd(width),
             'norm.weight': rnd(width), 'norm.bias': rnd(width)}
    for i in range(layers):
        b = f'blocks.{i}.'
        for name, shape in (('norm1', (width, )), ('norm2', (width, )),
                            ('attn.qkv', (3 * width, width)),
                            ('attn.proj', (width, width)),
                            ('mlp.fc1', (4 * width, width)),
                            ('mlp.fc2', (width, 4 * width))):
            state[f'{b}{name}.weight'] = rnd(*shape)
            state[f'{b}{name}.bias'] = rnd(shape[0])
    return state


def _vfm(**kwargs) -> VisionFoundationModel:
    args = dict(patch_size=P, width=W, layers=1, heads=1, image_size=16)
    args.update(kwargs)
    return VisionFoundationModel(**args)


@pytest.fixture
def dino_file(tmp_path):
    path = str(tmp_path / 'dino.safetensors')
    save_file(_dino_state(), path)
    return path


def test_no_weights_no_forward():
    model = _vfm()
    with pytest.raises(VFMRandomWeightsError,
                       match=r"no weights and would run on random ones.*"
                       r"pretrained=.*dino_vitb8.*download_vfm\.py --list"):
        model(torch.zeros(1, 3, 16, 16))
    assert issubclass(VFMRandomWeightsError, RandomWeightsError)
    assert issubclass(VFMRandomWeightsError, VFMCheckpointError)


def test_weights_read_before_the_first_forward(dino_file):
    """pretrained= without init_weights (mmengine's test loop): read on the
    first forward."""
    model = _vfm(pretrained=dino_file)
    assert model.load_report is None
    out = model(torch.zeros(1, 3, 16, 16))
    assert out.shape == (1, W, 2, 2) and model.load_report is not None


def test_weights_from_a_loaded_state_dict(dino_file):
    source = _vfm(pretrained=dino_file)
    source.init_weights()
    model = _vfm()
    model.load_state_dict(source.state_dict())
    x = torch.randn(1, 3, 16, 24)
    assert torch.equal(model(x), source(x))
    partial = _vfm()
    state = source.state_dict()
    state.pop('norm.bias')
    partial.load_state_dict(state, strict=False)
    with pytest.raises(VFMRandomWeightsError):
        partial(x)


def test_init_cfg_pretrained(dino_file):
    model = _vfm(init_cfg=dict(type='Pretrained', checkpoint=dino_file))
    model.init_weights()
    assert model.load_report.checkpoint.endswith('dino.safetensors')
    with pytest.raises(ValueError, match='either as pretrained or as init_cfg'):
        _vfm(pretrained=dino_file, init_cfg=dict(type='Pretrained',
                                                 checkpoint=dino_file))


def test_frozen(dino_file):
    model = _vfm(pretrained=dino_file)
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training and not any(m.training for m in model.modules())
    out = model(torch.randn(1, 3, 16, 16, requires_grad=True))
    assert not out.requires_grad


def test_architecture_needed():
    with pytest.raises(ValueError, match=r'set width, heads, or give '
                       r'pretrained='):
        VisionFoundationModel(patch_size=8, layers=1)


def test_missing_files_name_the_download_command(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r'python tools/download_vfm\.py dino_vitb8'):
        find_vfm_file('dino_vitb8', str(tmp_path))
    # a config's path whose file name is a table name
    missing = str(tmp_path / 'dinov2_vitb14_reg.safetensors')
    with pytest.raises(FileNotFoundError, match=(
            r'dinov2_vitb14_reg\.safetensors.*'
            r'python tools/download_vfm\.py dinov2_vitb14_reg')):
        find_vfm_file(missing, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r'nothing\.pth does not '
                       r'exist.*download_vfm\.py --list'):
        find_vfm_file(str(tmp_path / 'nothing.pth'))
    # the architecture comes from the table; the weights are refused at load
    model = VisionFoundationModel(pretrained=missing)
    assert (model.patch_size, model.width, model.num_register_tokens) == (
        14, 768, 4)
    with pytest.raises(FileNotFoundError, match='download_vfm.py'):
        model.init_weights()
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_vfm_arch(str(tmp_path / 'nothing.pth'))


def test_a_clip_file_is_not_a_vfm(tmp_path):
    path = str(tmp_path / 'ViT-B-16.pth')
    torch.save({'visual.conv1.weight': torch.zeros(4, 3, 16, 16),
                'visual.class_embedding': torch.zeros(4),
                'token_embedding.weight': torch.zeros(10, 4)}, path)
    with pytest.raises(VFMCheckpointError, match=(
            r'ViT-B-16\.pth is not a ViT of the DINO / DINOv2 kind: it looks '
            r'like a CLIP file')):
        _vfm(pretrained=path).init_weights()
    folder = tmp_path / 'clip-hf'
    folder.mkdir()
    (folder / 'config.json').write_text(json.dumps({'model_type': 'clip'}))
    save_file({'vision_model.embeddings.class_embedding': torch.zeros(4)},
              str(folder / 'model.safetensors'))
    with pytest.raises(VFMCheckpointError,
                       match=r"model_type 'clip' \(a CLIP model"):
        read_vfm_arch(str(folder))


def test_a_resnet_is_not_a_vfm(tmp_path):
    path = str(tmp_path / 'resnet50.pth')
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7),
                'bn1.weight': torch.zeros(64),
                'layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1)}, path)
    with pytest.raises(VFMCheckpointError,
                       match=r'resnet50\.pth is not a ViT.*looks like a ResNet'):
        _vfm(pretrained=path).init_weights()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / 'junk.safetensors'
    path.write_bytes(b'not a file')
    with pytest.raises(VFMCheckpointError, match=r'junk\.safetensors is not a '
                       r'VFM checkpoint: it is not a safetensors file'):
        _vfm(pretrained=str(path)).init_weights()
    full = str(tmp_path / 'dino_full_checkpoint.pth')
    torch.save({'teacher': _dino_state(), 'args': argparse.Namespace(a=1)},
               full)
    with pytest.raises(VFMCheckpointError, match=r"weights_only=True.*reduced "
                       r"to its 'teacher' weights"):
        _vfm(pretrained=full).init_weights()


def test_shape_mismatch_names_the_key_and_both_shapes(dino_file):
    with pytest.raises(VFMCheckpointError, match=(
            r"dino\.safetensors does not fit VisionFoundationModel: key "
            r"'cls_token' has shape \(1, 1, 16\) in the file but \(1, 1, 24\) "
            r'in the model. The file is VFMArch\(patch_size=8, width=16')):
        _vfm(pretrained=dino_file, width=24).init_weights()
    with pytest.raises(VFMCheckpointError,
                       match=r"'pos_embed' has shape \(1, 5, 16\) in the file "
                       r'but \(1, 10, 16\)'):
        _vfm(pretrained=dino_file, image_size=24).init_weights()


def test_unmapped_keys_are_listed(tmp_path):
    state = _dino_state()
    state['blocks.0.mlp.w12.weight'] = torch.zeros(2, 2)
    state['fc_norm.weight'] = torch.zeros(2)
    path = str(tmp_path / 'swiglu.pth')
    torch.save(state, path)
    with pytest.raises(VFMCheckpointError, match=(
            r"swiglu\.pth holds 2 key\(s\) of no DINO / DINOv2 ViT.*"
            r'unmapped: blocks\.0\.mlp\.w12\.weight, fc_norm\.weight')):
        _vfm(pretrained=path).init_weights()


def test_missing_and_unexpected_tensors(tmp_path, dino_file):
    state = _dino_state()
    del state['blocks.0.norm2.bias']
    path = str(tmp_path / 'partial.pth')
    torch.save(state, path)
    with pytest.raises(VFMCheckpointError, match=(
            r"partial\.pth lacks 1 tensor\(s\).*first 'blocks\.0\.norm2\.bias'"
            r' \(shape \(16,\)\)')):
        _vfm(pretrained=path).init_weights()
    deeper = str(tmp_path / 'two_layers.pth')
    torch.save(_dino_state(layers=2), deeper)
    with pytest.raises(VFMCheckpointError, match=(
            r'two_layers\.pth does not fit VisionFoundationModel: it holds 12 '
            r"tensor\(s\) the model has no place for, first "
            r"'blocks\.1\.norm1\.weight'.*layers=2")):
        _vfm(pretrained=deeper).init_weights()
    with pytest.raises(VFMCheckpointError, match=r'lacks .* first '
                       r"'register_tokens'"):
        _vfm(pretrained=dino_file, num_register_tokens=4).init_weights()


def test_heads_from_config_json(tmp_path):
    from vfm_helpers import save_transformers, tiny_vit
    folder = save_transformers(tiny_vit(8), str(tmp_path / 'vit'))
    with pytest.raises(VFMCheckpointError, match=(
            r'config.json says 2 attention heads but VisionFoundationModel '
            r'was built with heads=4.*Build it with heads=2')):
        VisionFoundationModel(pretrained=folder, heads=4).init_weights()
    config = json.load(open(osp.join(folder, 'config.json')))
    config['hidden_act'] = 'gelu_new'
    json.dump(config, open(osp.join(folder, 'config.json'), 'w'))
    with pytest.raises(VFMCheckpointError, match=r"hidden_act 'gelu_new'"):
        read_vfm_arch(folder)


def test_bad_inputs(dino_file):
    model = _vfm(pretrained=dino_file)
    with pytest.raises(ValueError, match=r'takes images \[B, 3, H, W\]'):
        model(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match='smaller than one 8 px patch'):
        model(torch.zeros(1, 3, 7, 32))
    with pytest.raises(ValueError, match='input_norm must be one of'):
        _vfm(input_norm='bgr')
