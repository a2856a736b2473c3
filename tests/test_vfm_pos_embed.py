"""The three position-table interpolations, each against the reference's
formula written out here, and the CLIP -> ImageNet renormalisation."""
import math

import pytest
import torch
import torch.nn.functional as F

from denseclip.clip.normalization import CLIP_MEAN, CLIP_STD
from denseclip.vfm import VisionFoundationModel
from denseclip.vfm.normalization import clip_to_imagenet
from denseclip.vfm.pos_embed import resize_pos_embed

SIDE, DIM = 6, 8


@pytest.fixture
def pos_embed():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, 1 + SIDE * SIDE, DIM, generator=gen)


def _dino_reference(pos_embed, h0, w0):
    """DINO's interpolate_pos_encoding (vision_transformer.py), for an
    input of h0 x w0 patches."""
    n = pos_embed.shape[1] - 1
    patch = pos_embed[:, 1:].reshape(1, int(math.sqrt(n)), int(math.sqrt(n)),
                                     DIM).permute(0, 3, 1, 2)
    h0, w0 = h0 + 0.1, w0 + 0.1
    patch = F.interpolate(patch, mode='bicubic',
                          scale_factor=(h0 / math.sqrt(n), w0 / math.sqrt(n)))
    assert patch.shape[-2:] == (int(h0), int(w0))
    patch = patch.permute(0, 2, 3, 1).view(1, -1, DIM)
    return torch.cat((pos_embed[:, :1], patch), dim=1)


@pytest.mark.parametrize('grid', [(4, 9), (9, 6), (13, 13), (6, 7)])
def test_dino_interpolation_is_dinos_formula(pos_embed, grid):
    got = resize_pos_embed(pos_embed, grid, (grid[0] * 16, grid[1] * 16),
                           'dino')
    assert torch.equal(got, _dino_reference(pos_embed, *grid))


def test_dino_resizes_a_non_square_input_of_the_training_grid(pos_embed):
    """DINO keeps its table only for a square input of the training grid; a
    6 x 6 grid from a 96 x 100 px input is resized (by 6.1 / 6)."""
    assert resize_pos_embed(pos_embed, (SIDE, SIDE), (96, 96),
                            'dino') is pos_embed
    got = resize_pos_embed(pos_embed, (SIDE, SIDE), (96, 100), 'dino')
    assert torch.equal(got, _dino_reference(pos_embed, SIDE, SIDE))
    assert not torch.equal(got, pos_embed)


@pytest.mark.parametrize('grid', [(4, 9), (9, 6)])
def test_exact_and_antialias_interpolation(pos_embed, grid):
    table = pos_embed[:, 1:].reshape(1, SIDE, SIDE, DIM).permute(0, 3, 1, 2)
    for mode, kwargs in (('exact', {}), ('antialias', dict(antialias=True))):
        want = F.interpolate(table, size=grid, mode='bicubic',
                             align_corners=False, **kwargs)
        want = torch.cat([pos_embed[:, :1],
                          want.permute(0, 2, 3, 1).reshape(1, -1, DIM)], 1)
        got = resize_pos_embed(pos_embed, grid, (grid[0] * 14, grid[1] * 14),
                               mode)
        assert torch.equal(got, want), mode
    # the modes give other numbers
    a, b, c = (resize_pos_embed(pos_embed, grid, (1, 2), m)
               for m in ('dino', 'exact', 'antialias'))
    assert (a - b).abs().max() > 1e-3 and (b - c).abs().max() > 1e-3


def test_antialias_runs_in_float32(pos_embed):
    half = pos_embed.to(torch.bfloat16)
    got = resize_pos_embed(half, (4, 9), (56, 126), 'antialias')
    assert got.dtype == torch.bfloat16
    table = half[:, 1:].float().reshape(1, SIDE, SIDE, DIM).permute(0, 3, 1, 2)
    want = F.interpolate(table, size=(4, 9), mode='bicubic', antialias=True)
    assert torch.equal(got[:, 1:], want.to(torch.bfloat16).permute(
        0, 2, 3, 1).reshape(1, -1, DIM))


def test_unknown_mode():
    with pytest.raises(ValueError, match="pos_interpolation must be one of"):
        VisionFoundationModel(patch_size=8, width=16, layers=1, heads=1,
                              pos_interpolation='bilinear')


def test_clip_to_imagenet_is_proxyclips_unnorm_then_norm():
    x = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    clip_mean = (0.48145466, 0.4578275, 0.40821073)
    clip_std = (0.26862954, 0.26130258, 0.27577711)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    want = torch.empty_like(x)
    for c in range(3):  # UnNormalize, then transforms.Normalize
        want[:, c] = (x[:, c] * clip_std[c] + clip_mean[c] - mean[c]) / std[c]
    assert (clip_to_imagenet(x) - want).abs().max() < 1e-6


def test_clip_to_imagenet_from_the_data_preprocessors_values():
    """An 0..255 RGB image normalised with our preprocessor's CLIP values
    comes out as the same image normalised with ImageNet's statistics (to
    the rounding of the preprocessor's 4 decimals)."""
    rgb = torch.randint(0, 256, (1, 3, 4, 4),
                        generator=torch.Generator().manual_seed(2)).float()
    clip_input = (rgb - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / \
        torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    want = (rgb / 255 - torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
            ) / torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    assert (clip_to_imagenet(clip_input) - want).abs().max() < 1e-4
