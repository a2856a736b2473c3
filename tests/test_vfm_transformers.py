"""VisionFoundationModel equals transformers' ViTModel (DINO) and
Dinov2WithRegistersModel, loaded from the folders their save_pretrained
writes, at the training size and at two non-square sizes."""
import pytest
import torch

from denseclip.vfm import VisionFoundationModel, read_vfm_arch
from denseclip.vfm.normalization import (CLIP_MEAN_01, CLIP_STD_01,
                                         IMAGENET_MEAN, IMAGENET_STD)
from vfm_helpers import (HEADS, LAYERS, WIDTH, patch_tokens, save_transformers,
                         tiny_dinov2_reg, tiny_vit)

TOL = 1e-5


@pytest.fixture(scope='module', params=[8, 16], ids=['patch8', 'patch16'])
def vit(request, tmp_path_factory):
    """(transformers model, its folder, patch size)."""
    patch = request.param
    model = tiny_vit(patch, seed=patch)
    folder = save_transformers(model,
                               str(tmp_path_factory.mktemp(f'vit{patch}')))
    return model, folder, patch


@pytest.fixture(scope='module')
def dinov2(tmp_path_factory):
    model = tiny_dinov2_reg(seed=3)
    return model, save_transformers(model, str(tmp_path_factory.mktemp('d2')))


def _ours(folder: str, **kwargs) -> VisionFoundationModel:
    model = VisionFoundationModel(pretrained=folder, **kwargs)
    model.init_weights()
    return model


def _inputs(seed: int, height: int, width: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, height, width, generator=gen)


def test_arch_read_from_the_folders(vit, dinov2):
    _, folder, patch = vit
    assert tuple(read_vfm_arch(folder)) == (
        patch, WIDTH, LAYERS, HEADS, 4.0, 0, False, 4 * patch, 'dino')
    assert tuple(read_vfm_arch(dinov2[1])) == (
        14, WIDTH, LAYERS, HEADS, 4.0, 4, True, 56, 'antialias')


def test_vit_equals_transformers(vit):
    reference, folder, patch = vit
    ours = _ours(folder, pos_interpolation='exact', input_norm='imagenet')
    assert ours.load_report.unused == ['pooler.dense.bias',
                                       'pooler.dense.weight']
    side = 4 * patch
    # the training size, then two non-square ones (one not a multiple)
    for seed, (h, w) in enumerate([(side, side), (side + patch, 2 * side),
                                   (side + 3, 3 * side - 5)]):
        x = _inputs(seed, h, w)
        with torch.no_grad():
            ref = reference(x, interpolate_pos_encoding=True).last_hidden_state
        got = ours(x)
        grid = (h // patch, w // patch)
        assert got.shape == (2, WIDTH, *grid)
        diff = (got - patch_tokens(ref, 1, grid)).abs().max().item()
        assert diff < TOL, ((h, w), diff)


def test_vit_training_size_without_interpolation_flag(vit):
    reference, folder, patch = vit
    ours = _ours(folder, input_norm='imagenet')  # the family's 'dino'
    x = _inputs(7, 4 * patch, 4 * patch)
    with torch.no_grad():
        ref = reference(x).last_hidden_state
    assert (ours(x) - patch_tokens(ref, 1, (4, 4))).abs().max() < TOL


def test_dino_interpolation_is_not_transformers(vit):
    """At another size DINO's offset scale factor places the samples
    elsewhere than transformers' size=: the comparison above can tell."""
    reference, folder, patch = vit
    ours = _ours(folder, pos_interpolation='dino', input_norm='imagenet')
    h, w = 4 * patch + patch, 8 * patch
    x = _inputs(1, h, w)
    with torch.no_grad():
        ref = reference(x, interpolate_pos_encoding=True).last_hidden_state
    diff = (ours(x) - patch_tokens(ref, 1, (5, 8))).abs().max()
    assert diff > 1e-3


def test_dinov2_registers_equals_transformers(dinov2):
    reference, folder = dinov2
    ours = _ours(folder, input_norm='imagenet')
    assert ours.pos_interpolation == 'antialias'
    assert ours.num_register_tokens == 4
    assert ours.load_report.unused == ['embeddings.mask_token']
    for seed, (h, w) in enumerate([(56, 56), (70, 42), (75, 100)]):
        x = _inputs(seed, h, w)
        with torch.no_grad():
            ref = reference(x).last_hidden_state
        grid = (h // 14, w // 14)
        got = ours(x)
        assert got.shape == (2, WIDTH, *grid)
        diff = (got - patch_tokens(ref, 5, grid)).abs().max().item()
        assert diff < TOL, ((h, w), diff)


def test_clip_input_is_renormalised_to_imagenet(dinov2):
    """Given CLIP-normalised images (our data preprocessor's), the features
    are transformers' for the same images normalised with ImageNet's
    statistics, as ProxyCLIP's unnorm-then-norm does."""
    reference, folder = dinov2
    ours = _ours(folder)  # input_norm='clip', the default
    rgb = torch.rand(1, 3, 70, 84, generator=torch.Generator().manual_seed(5))
    clip_mean = torch.tensor(CLIP_MEAN_01).view(1, 3, 1, 1)
    clip_std = torch.tensor(CLIP_STD_01).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = reference((rgb - mean) / std).last_hidden_state
    got = ours((rgb - clip_mean) / clip_std)
    assert (got - patch_tokens(ref, 5, (5, 6))).abs().max() < TOL
