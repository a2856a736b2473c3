"""PAMR: the refinement NACLIP and SCLIP run, checked against the formula
computed another way (3x3 dilated convolutions over replicate-padded maps,
as the references' modules do)."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from denseclip.models.postprocess import PAMR


def conv_windows(x, dilations, centre):
    """[B, C, P, H, W] values of each 3x3 window position (P = 8 or 9 per
    dilation) by one-hot 3x3 kernels."""
    positions = [(i, j) for i in range(3) for j in range(3)
                 if centre or (i, j) != (1, 1)]
    kernel = torch.zeros(len(positions), 1, 3, 3)
    for n, (i, j) in enumerate(positions):
        kernel[n, 0, i, j] = 1
    B, C, H, W = x.shape
    flat = x.reshape(B * C, 1, H, W)
    out = [F.conv2d(F.pad(flat, [d] * 4, mode='replicate'), kernel,
                    dilation=d) for d in dilations]
    return torch.cat(out, 1).view(B, C, -1, H, W)


def oracle(image, mask, num_iter, dilations):
    std = conv_windows(image, dilations, True).std(2, keepdim=True)
    diff = (image[:, :, None] - conv_windows(image, dilations, False)).abs()
    aff = F.softmax((-diff / (1e-8 + 0.1 * std)).mean(1, keepdim=True), 2)
    for _ in range(num_iter):
        mask = (conv_windows(mask, dilations, False) * aff).sum(2)
    return mask


@pytest.mark.parametrize('dilations', [(1, ), (2, 3), (8, 16)])
def test_equals_the_formula(dilations):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, 20, 27, generator=g)
    mask = torch.randn(2, 5, 20, 27, generator=g)
    pamr = PAMR(num_iter=4, dilations=dilations, query_chunk=2)
    torch.testing.assert_close(pamr(image, mask),
                               oracle(image, mask, 4, dilations),
                               rtol=1e-5, atol=1e-5)


def test_scores_are_brought_to_the_image_size_and_constants_stay():
    image = torch.rand(1, 3, 16, 16)
    small = torch.randn(1, 2, 4, 4)
    big = F.interpolate(small, (16, 16), mode='bilinear', align_corners=True)
    pamr = PAMR(num_iter=2, dilations=(1, 2))
    torch.testing.assert_close(pamr(image, small), pamr(image, big))
    const = torch.full((1, 3, 16, 16), 0.7)
    torch.testing.assert_close(pamr(image, const), const)
    aff = pamr.affinity(image)
    assert aff.shape == (1, 16, 16, 16)
    torch.testing.assert_close(aff.sum(1), torch.ones(1, 16, 16))


def test_edges_in_the_image_keep_a_step_in_the_scores():
    """A ramp of scores over an image of two flat halves becomes a step at
    the image's edge; over a flat image it stays smooth."""
    ramp = torch.linspace(0, 1, 12).expand(1, 1, 12, 12).clone()
    halves = torch.zeros(1, 3, 12, 12)
    halves[:, :, :, 6:] = 1.
    pamr = PAMR(num_iter=10, dilations=(1, ))
    out = pamr(halves, ramp)[0, 0]
    flat = pamr(torch.zeros(1, 3, 12, 12), ramp)[0, 0]
    step = (out[:, 6] - out[:, 5]).mean()
    assert step > 3 * (flat[:, 6] - flat[:, 5]).mean()
    assert out[:, :6].max() < out[:, 6:].min()


def test_registered_and_bad_settings_are_named():
    pamr = MODELS.build(dict(type='PAMR', num_iter=10, dilations=[8, 16]))
    assert (pamr.num_iter, pamr.dilations) == (10, (8, 16))
    for kwargs, message in ((dict(num_iter=-1), 'num_iter must be a non-'),
                            (dict(dilations=()), 'dilations must be posit'),
                            (dict(dilations=(0, 2)), 'dilations must be pos'),
                            (dict(query_chunk=0), 'query_chunk must be')):
        with pytest.raises(ValueError, match=f'PAMR: {message}'):
            PAMR(**kwargs)
    with pytest.raises(ValueError, match=r'PAMR: scores \(1, 2, 4, 4\) and '
                       r'the affinity'):
        pamr.propagate(torch.zeros(1, 2, 4, 4), torch.zeros(1, 16, 5, 5))
