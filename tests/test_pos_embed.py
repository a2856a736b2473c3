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
