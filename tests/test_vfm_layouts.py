"""DINO's, DINOv2's and timm's own key layouts (converted in the test from a
transformers model's weights) load to the same outputs as the transformers
folder of the same weights; so do the variants people have on disk
(training checkpoints, prefixes, transformers 5's module names)."""
import os.path as osp

import pytest
import torch
from safetensors.torch import save_file

from denseclip.vfm import VisionFoundationModel, read_vfm_arch
from vfm_helpers import (HEADS, WIDTH, hf_weights, official_to_timm,
                         save_transformers, tiny_dinov2_reg, tiny_vit,
                         to_official)


@pytest.fixture(scope='module')
def dino(tmp_path_factory):
    """A DINO ViT/16 (4 x 4 grid) as a transformers folder."""
    folder = str(tmp_path_factory.mktemp('dino'))
    save_transformers(tiny_vit(16, seed=11), folder)
    return folder


@pytest.fixture(scope='module')
def dinov2(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('dinov2'))
    save_transformers(tiny_dinov2_reg(seed=12), folder)
    return folder


def _features(pretrained: str, size, **kwargs) -> torch.Tensor:
    model = VisionFoundationModel(pretrained=pretrained, heads=HEADS,
                                  **kwargs)
    model.init_weights()
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    return model(x)


# sizes: the training one, a non-square one
DINO_SIZES = [(64, 64), (80, 112)]
DINOV2_SIZES = [(56, 56), (70, 98)]


def test_dino_official_and_timm_equal_transformers(dino, tmp_path):
    official = to_official(hf_weights(dino))
    torch.save(official, tmp_path / 'dino_official.pth')
    save_file(official_to_timm(official), str(tmp_path / 'model.safetensors'))
    for size in DINO_SIZES:
        want = _features(dino, size)
        for path in ('dino_official.pth', 'model.safetensors'):
            got = _features(str(tmp_path / path), size)
            assert (got - want).abs().max() < 1e-6, (path, size)
    arch = read_vfm_arch(str(tmp_path / 'model.safetensors'))
    assert (arch.patch_size, arch.image_size, arch.num_register_tokens,
            arch.layer_scale, arch.pos_interpolation) == (16, 64, 0, False,
                                                          'dino')


def test_dinov2_official_and_timm_equal_transformers(dinov2, tmp_path):
    official = to_official(hf_weights(dinov2))
    assert {'register_tokens', 'mask_token', 'blocks.1.ls2.gamma'} <= set(
        official)
    torch.save(official, tmp_path / 'dinov2_vitb14_reg4_pretrain.pth')
    timm = official_to_timm(official)
    assert timm['pos_embed'].shape[1] == 16 and 'reg_token' in timm
    save_file(timm, str(tmp_path / 'timm.safetensors'))
    for path in ('dinov2_vitb14_reg4_pretrain.pth', 'timm.safetensors'):
        arch = read_vfm_arch(str(tmp_path / path))
        assert (arch.patch_size, arch.image_size, arch.num_register_tokens,
                arch.layer_scale, arch.pos_interpolation) == (
                    14, 56, 4, True, 'antialias'), path
    for size in DINOV2_SIZES:
        want = _features(dinov2, size)
        for path in ('dinov2_vitb14_reg4_pretrain.pth', 'timm.safetensors'):
            got = _features(str(tmp_path / path), size)
            assert (got - want).abs().max() < 1e-6, (path, size)


def test_timm_layout_report(dinov2, tmp_path):
    save_file(official_to_timm(to_official(hf_weights(dinov2))),
              str(tmp_path / 'timm.safetensors'))
    model = VisionFoundationModel(pretrained=str(tmp_path / 'timm.safetensors'),
                                  heads=HEADS)
    model.init_weights()
    report = model.load_report
    assert report.layout == 'timm' and report.missing == []
    assert 'register_tokens' in report.loaded
    assert any('zero class row' in note for note in report.notes)
    assert "DINO's / timm's layout" in str(report)


def test_dino_training_checkpoint_nested_and_prefixed(dino, tmp_path):
    """DINO's *_full_checkpoint.pth keeps the weights under teacher /
    student, as backbone.* (and module.backbone.* from DDP) next to its
    projection head: the teacher's backbone is read, the head left out."""
    official = to_official(hf_weights(dino))
    teacher = {f'module.backbone.{k}': v for k, v in official.items()}
    teacher['module.head.last_layer.weight_g'] = torch.ones(5, 1)
    student = {f'module.backbone.{k}': torch.zeros_like(v)
               for k, v in official.items()}
    torch.save({'student': student, 'teacher': teacher, 'epoch': 100},
               tmp_path / 'full.pth')
    want = _features(dino, (80, 112))
    got = _features(str(tmp_path / 'full.pth'), (80, 112))
    assert (got - want).abs().max() < 1e-6
    model = VisionFoundationModel(pretrained=str(tmp_path / 'full.pth'),
                                  heads=HEADS)
    model.init_weights()
    assert model.load_report.unused == ['head.last_layer.weight_g']


def test_chunked_blocks(dinov2, tmp_path):
    """DINOv2's chunked blocks (blocks.CHUNK.N.*) read as blocks.N.*."""
    official = to_official(hf_weights(dinov2))
    # one chunk: blocks.0.N.* (a larger model: blocks.C.N.*, N global)
    chunked = {(k.replace('blocks.', 'blocks.0.', 1)
                if k.startswith('blocks.') else k): v
               for k, v in official.items()}
    assert 'blocks.0.1.norm1.weight' in chunked
    torch.save({'model': chunked}, tmp_path / 'chunked.pth')
    want = _features(dinov2, (70, 98))
    assert (_features(str(tmp_path / 'chunked.pth'), (70, 98)) -
            want).abs().max() < 1e-6


def test_transformers_prefixed_and_v5_names(dinov2, dino, tmp_path):
    """A task model's weights (dinov2_with_registers.*, vit.*, classifier)
    and the names of transformers 5's modules (layers.N, q_proj ...)."""
    import shutil
    from transformers import Dinov2WithRegistersModel, ViTModel
    for source, cls, prefix, size in (
            (dinov2, Dinov2WithRegistersModel, 'dinov2_with_registers.',
             (70, 98)), (dino, ViTModel, 'vit.', (80, 112))):
        want = _features(source, size)
        for name, state in (
                ('prefixed', {**{prefix + k: v for k, v in
                                 hf_weights(source).items()},
                              'classifier.weight': torch.zeros(3, WIDTH)}),
                ('v5', cls.from_pretrained(source).state_dict())):
            folder = tmp_path / f'{prefix}{name}'
            folder.mkdir()
            shutil.copy(osp.join(source, 'config.json'), folder)
            save_file({k: v.contiguous() for k, v in state.items()},
                      str(folder / 'model.safetensors'))
            got = _features(str(folder), size)
            assert (got - want).abs().max() < 1e-6, (prefix, name)


def test_bin_and_config_beside_the_weights_file(dinov2, tmp_path):
    """pytorch_model.bin in a transformers folder, given as the file."""
    import shutil
    folder = tmp_path / 'hf'
    folder.mkdir()
    shutil.copy(osp.join(dinov2, 'config.json'), folder)
    torch.save(hf_weights(dinov2), folder / 'pytorch_model.bin')
    want = _features(dinov2, (56, 56))
    got = _features(str(folder / 'pytorch_model.bin'), (56, 56))
    assert (got - want).abs().max() < 1e-6


def test_only_pretrained_in_the_config(dinov2):
    """Built from the registry with nothing but pretrained=."""
    from mmseg.registry import MODELS
    model = MODELS.build(dict(type='VisionFoundationModel',
                              pretrained=dinov2))
    assert (model.patch_size, model.width, model.heads,
            model.num_register_tokens, model.pos_interpolation) == (
                14, WIDTH, HEADS, 4, 'antialias')
    model.init_weights()
    assert model(torch.zeros(1, 3, 56, 84)).shape == (1, WIDTH, 4, 6)
