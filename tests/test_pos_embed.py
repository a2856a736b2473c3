"""resize_pos_embed's bicubic mode (SCLIP / ClearCLIP / NACLIP): two matrix
products equal to F.interpolate's bicubic kernel, which is slow on a GPU."""
import pytest
import torch
import torch.nn.functional as F

from denseclip.clip.pos_embed import bicubic_matrices, resize_pos_embed


def interpolate_reference(pos, grid):
    side = int((pos.shape[0] - 1) ** 0.5)
    spatial = pos[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    out = F.interpolate(spatial, mode='bicubic', align_corners=False,
                        scale_factor=((grid[0] + 0.1) / side,
                                      (grid[1] + 0.1) / side),
                        recompute_scale_factor=False)
    return torch.cat([pos[:1], out.reshape(pos.shape[1], -1).t()])


@pytest.mark.parametrize('side,grid', [(14, (32, 32)), (14, (14, 21)),
                                       (14, (6, 4)), (7, (40, 3)),
                                       (24, (24, 36)), (16, (1, 1)),
                                       (14, (14, 14 + 1))])
def test_bicubic_equals_interpolate(side, grid):
    torch.manual_seed(0)
    pos = torch.randn(1 + side * side, 32, dtype=torch.float64)
    ours = resize_pos_embed(pos, grid, 'bicubic')
    assert ours.shape == (1 + grid[0] * grid[1], 32)
    # float64: the same weights, only the order of the sums differs
    torch.testing.assert_close(ours, interpolate_reference(pos, grid),
                               rtol=0, atol=1e-12)
    # float32: within float32 rounding of the values (|x| < 5)
    torch.testing.assert_close(resize_pos_embed(pos.float(), grid, 'bicubic'),
                               interpolate_reference(pos.float(), grid),
                               rtol=0, atol=2e-5)


def test_bicubic_matrices_are_interpolation_weights():
    rows, cols = bicubic_matrices(14, (32, 20))
    assert rows.shape == (32, 14) and cols.shape == (20, 14)
    assert rows.dtype == torch.float64
    # each output position is a weighted sum of 4 neighbours, weights sum 1
    torch.testing.assert_close(rows.sum(1), torch.ones(32, dtype=rows.dtype))
    assert ((rows != 0).sum(1) <= 4).all()


def test_same_grid_is_returned_unchanged_and_gradients_flow():
    pos = torch.randn(1 + 49, 8, requires_grad=True)
    assert resize_pos_embed(pos, (7, 7), 'bicubic') is pos
    resize_pos_embed(pos, (9, 5), 'bicubic').sum().backward()
    assert pos.grad is not None and pos.grad[1:].abs().sum() > 0


def maskclip_resize_reference(pos_embed, input_shape, pos_shape):
    """MaskCLIP's ``VisionTransformer.resize_pos_embed`` (mmseg/models/
    backbones/vit.py) from its definition: ``[B, L, C]`` embeddings, the
    class position kept, the last ``h * w`` positions resized bicubically to
    ``input_shape`` exactly (``align_corners=False``), flattened row-major."""
    h, w = pos_shape
    cls_pos = pos_embed[:, :1]
    grid = pos_embed[:, -h * w:].reshape(1, h, w, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=input_shape, mode='bicubic',
                         align_corners=False)
    return torch.cat([cls_pos, grid.flatten(2).transpose(1, 2)], dim=1)


@pytest.mark.parametrize('side,grid', [(14, (32, 32)), (14, (14, 21)),
                                       (14, (6, 4)), (7, (40, 3)),
                                       (16, (36, 24)), (16, (1, 1))])
def test_maskclip_mode_equals_maskclip_resize(side, grid):
    torch.manual_seed(1)
    pos = torch.randn(1 + side * side, 24, dtype=torch.float64)
    expected = maskclip_resize_reference(pos[None], grid, (side, side))[0]
    torch.testing.assert_close(resize_pos_embed(pos, grid, 'maskclip'),
                               expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        resize_pos_embed(pos.float(), grid, 'maskclip'),
        maskclip_resize_reference(pos.float()[None], grid,
                                  (side, side))[0], rtol=0, atol=2e-5)


def test_maskclip_mode_differs_from_dino_bicubic():
    """The two bicubic recipes sample the grid at different places: source
    step ``side / H`` (MaskCLIP) against ``side / (H + 0.1)`` (DINO's)."""
    torch.manual_seed(2)
    pos = torch.randn(1 + 14 * 14, 8, dtype=torch.float64)
    exact = resize_pos_embed(pos, (32, 32), 'maskclip')
    dino = resize_pos_embed(pos, (32, 32), 'bicubic')
    assert (exact[1:] - dino[1:]).abs().max() > 1e-3
    torch.testing.assert_close(exact[:1], dino[:1])  # class position kept
    rows, _ = bicubic_matrices(14, (32, 32), exact_size=True)
    torch.testing.assert_close(rows.sum(1), torch.ones(32, dtype=rows.dtype))


def test_backbone_embeds_with_maskclip_resize():
    from denseclip.models.backbones.clip_vit import CLIPVisionTransformer
    torch.manual_seed(3)
    vit = CLIPVisionTransformer(
        input_resolution=28, patch_size=14, width=32, layers=1, heads=2,
        output_dim=16, out_indices=(), pos_interpolation='maskclip').eval()
    image = torch.randn(1, 3, 70, 42)  # a 5 x 3 grid of 14px patches
    with torch.no_grad():
        tokens, grid = vit.embed(image)
        patches = vit.conv1(image).flatten(2).transpose(1, 2)
        x = torch.cat([vit.class_embedding.expand(1, 1, 32), patches], 1)
        pos = maskclip_resize_reference(vit.positional_embedding[None],
                                        (5, 3), (2, 2))
        expected = vit.ln_pre(x + pos)
    assert grid == (5, 3)
    torch.testing.assert_close(tokens, expected, rtol=0, atol=1e-5)


def test_unknown_interpolation_is_named():
    from denseclip.models.backbones.clip_vit import CLIPVisionTransformer
    with pytest.raises(ValueError, match="'maskclip'.*got 'nearest'"):
        CLIPVisionTransformer(patch_size=14, width=32, layers=1, heads=2,
                              out_indices=(), pos_interpolation='nearest')
    with pytest.raises(ValueError, match="got 'area'"):
        resize_pos_embed(torch.zeros(5, 2), (3, 3), 'area')
