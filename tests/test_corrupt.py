"""The Corrupt transform: every type and level, repeatable per image, any image.

The corruptions come from ``imagecorruptions-imaug`` (ImageNet-C's code);
these tests check what this project adds and relies on: the conversion from
mmcv's BGR, the seeding from the image's file name, sizes, grayscale, errors,
and that the levels mean what the tables say (stronger at higher levels).
"""
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS

from denseclip.datasets.corrupt import (CORRUPTIONS, REFERENCE_CORRUPTIONS,
                                        SEVERITIES, Corrupt, corrupt_image,
                                        corruption_seed)
from denseclip.toy.data import draw_toy_scene

# Mean |change| grows with the level: the stronger setting of one operation,
# drawn from the same seed (the level is not part of the seed).
MONOTONE = ('gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
            'motion_blur', 'zoom_blur', 'brightness', 'contrast',
            'elastic_transform', 'pixelate', 'jpeg_compression',
            'speckle_noise', 'gaussian_blur')
# ... and where ImageNet-C's parameters do not make it grow: glass_blur's
# shuffling passes are 2, 1, 3, 2, 2; snow, frost and fog weigh the image
# down and their overlay up by separate factors; spatter is water at levels
# 1-3 and mud at 4-5; saturate desaturates at levels 1-2 and saturates at 3-5.
NOT_MONOTONE = ('glass_blur', 'snow', 'frost', 'fog', 'spatter', 'saturate')
# no random draw at all: the same output for every image name
DETERMINISTIC = ('defocus_blur', 'zoom_blur', 'brightness', 'contrast',
                 'pixelate', 'jpeg_compression', 'gaussian_blur', 'saturate')
RANDOM = tuple(n for n in CORRUPTIONS if n not in DETERMINISTIC)


def toy_image(seed: int = 0, size=(120, 150)) -> np.ndarray:
    """A toy scene (shapes on a textured background) in mmcv's BGR."""
    rgb, _, _ = draw_toy_scene(np.random.default_rng(seed), size, 3)
    return np.ascontiguousarray(rgb[..., ::-1])


def change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


@pytest.fixture(scope='module')
def changes():
    """Mean |change| of a toy image for every type x level (one seed)."""
    img = toy_image()
    seed = corruption_seed('ADE_val_00000001.jpg')
    return {(name, level): change(corrupt_image(img, name, level, seed), img)
            for name in CORRUPTIONS for level in SEVERITIES}


def test_the_library_has_the_types_named_here():
    import imagecorruptions
    assert tuple(imagecorruptions.get_corruption_names('all')) == CORRUPTIONS
    assert set(REFERENCE_CORRUPTIONS) <= set(CORRUPTIONS)
    assert len(REFERENCE_CORRUPTIONS) == 8
    assert sorted(MONOTONE + NOT_MONOTONE) == sorted(CORRUPTIONS)


def test_every_type_changes_the_image_at_every_level(changes):
    unchanged = {k: v for k, v in changes.items() if v < 0.5}
    assert not unchanged


def test_the_change_grows_with_the_level(changes):
    for name in MONOTONE:
        row = [changes[name, level] for level in SEVERITIES]
        assert all(np.diff(row) > 0), (name, row)
    # on average over all 19 types, and over the reference's 8, too
    for names in (CORRUPTIONS, REFERENCE_CORRUPTIONS):
        means = [np.mean([changes[n, level] for n in names])
                 for level in SEVERITIES]
        assert all(np.diff(means) > 0), means
    # the others do not grow level by level: documented, not hidden
    assert any(np.any(np.diff([changes[n, level] for level in SEVERITIES]) < 0)
               for n in NOT_MONOTONE)


def test_same_image_and_level_give_the_same_output_other_names_other_noise():
    img = toy_image()
    for name in CORRUPTIONS:
        step = Corrupt(name, 3)
        a = step(dict(img=img.copy(), img_path='data/val/a.jpg'))['img']
        again = step(dict(img=img.copy(), img_path='data/val/a.jpg'))['img']
        # the file name decides, not the folder: a dataset moved elsewhere
        # is corrupted the same way
        moved = step(dict(img=img.copy(), img_path='/elsewhere/a.jpg'))['img']
        other = step(dict(img=img.copy(), img_path='data/val/b.jpg'))['img']
        assert np.array_equal(a, again) and np.array_equal(a, moved), name
        if name in RANDOM:
            assert change(a, other) > 0.1, name
        else:
            assert np.array_equal(a, other), name
    # another seed of the transform: other draws for the same file
    a = Corrupt('gaussian_noise', 2)(dict(img=img.copy(), img_path='a.jpg'))
    b = Corrupt('gaussian_noise', 2, seed=1)(dict(img=img.copy(),
                                                  img_path='a.jpg'))
    assert not np.array_equal(a['img'], b['img'])


def test_an_image_without_a_path_is_seeded_from_its_bytes():
    img, other = toy_image(0), toy_image(1)
    step = Corrupt('shot_noise', 2)
    a = step(dict(img=img.copy()))['img']
    assert np.array_equal(a, step(dict(img=img.copy()))['img'])
    noise_a = a.astype(int) - img
    noise_b = step(dict(img=other.copy()))['img'].astype(int) - other
    assert not np.array_equal(noise_a, noise_b)


def test_numpys_global_generator_is_left_as_it_was():
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    for name in RANDOM:
        corrupt_image(toy_image(), name, 2, seed=5)
    assert np.array_equal(np.random.rand(3), expected)


def test_bgr_is_converted_to_the_librarys_rgb():
    """Spatter's water is pale turquoise (RGB 175, 238, 238): it raises
    blue and green more than red, whichever order the image comes in."""
    bgr = np.full((64, 64, 3), 60, np.uint8)
    out_bgr = corrupt_image(bgr, 'spatter', 2, seed=3)  # channel_order='bgr'
    out_rgb = corrupt_image(bgr[..., ::-1].copy(), 'spatter', 2, seed=3,
                            channel_order='rgb')
    assert np.array_equal(out_bgr, out_rgb[..., ::-1])
    raised = (out_bgr.astype(float) - bgr).mean(axis=(0, 1))  # B, G, R
    assert raised[0] > 1.0 and raised[0] > 1.2 * raised[2], raised


@pytest.mark.parametrize('shape', [(120, 150), (120, 150, 1)])
def test_grayscale_images_stay_grayscale(shape):
    gray = np.ascontiguousarray(toy_image()[..., 1]).reshape(shape)
    for name in ('gaussian_noise', 'spatter', 'frost', 'jpeg_compression',
                 'saturate'):
        out = Corrupt(name, 5)(dict(img=gray.copy(), img_path='g.png'))['img']
        assert out.shape == gray.shape and out.dtype == np.uint8, name
        if name != 'saturate':  # no colour, nothing to saturate
            assert change(out, gray) > 1.0, name
    # each channel is corrupted at the level's full strength: gaussian noise
    # is as strong on a grayscale image as on the same image in colour
    three = np.repeat(gray.reshape(120, 150, 1), 3, axis=2)
    seed = corruption_seed('g.png')
    on_gray = change(corrupt_image(gray, 'gaussian_noise', 3, seed), gray)
    on_color = change(corrupt_image(three, 'gaussian_noise', 3, seed), three)
    assert on_gray == pytest.approx(on_color, rel=0.1)


@pytest.mark.parametrize('size', [(1, 1), (7, 300), (31, 33), (37, 61),
                                  (333, 517)])
def test_any_size(size):
    img = toy_image(2, size) if min(size) >= 8 else np.random.default_rng(
        0).integers(0, 256, size + (3, ), dtype=np.uint8)
    # the types with size arithmetic: crops of the frost pictures, zooms,
    # shuffles, the fog fractal (a power of two), resizes
    for name in ('frost', 'zoom_blur', 'glass_blur', 'fog', 'pixelate',
                 'motion_blur', 'snow', 'elastic_transform', 'spatter'):
        out = corrupt_image(img, name, 5, seed=1)
        assert out.shape == img.shape and out.dtype == np.uint8, (name, size)


def test_rgba_keeps_its_alpha():
    img = np.dstack([toy_image(), np.arange(120 * 150, dtype=np.uint32)
                     .reshape(120, 150).astype(np.uint8)])
    out = corrupt_image(img, 'impulse_noise', 4, seed=0)
    assert out.shape == img.shape
    assert np.array_equal(out[..., 3], img[..., 3])
    assert change(out[..., :3], img[..., :3]) > 1.0


def test_unknown_type_and_bad_levels_are_errors_that_say_what_is_valid():
    with pytest.raises(ValueError) as err:
        Corrupt('gausian_noise', 3)
    message = str(err.value)
    assert "'gausian_noise'" in message
    assert all(name in message for name in CORRUPTIONS)
    for level in (0, 6, '3', 2.0, True):
        with pytest.raises(ValueError, match='jpeg_compression: level must '
                           'be an integer in 1-5'):
            Corrupt('jpeg_compression', level)
    with pytest.raises(ValueError, match='channel_order'):
        Corrupt('spatter', 1, channel_order='BGR ')


def test_images_it_cannot_corrupt_are_errors_naming_the_file():
    step = Corrupt('gaussian_noise', 1)
    with pytest.raises(TypeError, match=r'gaussian_noise.*x/16bit\.png.*'
                       'uint16'):
        step(dict(img=np.zeros((40, 40, 3), np.uint16),
                  img_path='x/16bit.png'))
    with pytest.raises(ValueError, match=r'x/two\.png.*\(40, 40, 2\)'):
        step(dict(img=np.zeros((40, 40, 2), np.uint8), img_path='x/two.png'))


def test_registered_in_mmsegs_transforms():
    step = TRANSFORMS.build(dict(type='Corrupt', name='defocus_blur',
                                 level=2))
    assert isinstance(step, Corrupt)
    assert repr(step) == ("Corrupt(name='defocus_blur', level=2, seed=0, "
                          "channel_order='bgr')")


def test_without_the_library_the_error_says_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'imagecorruptions', None)  # not found
    with pytest.raises(ImportError, match='imagecorruptions-imaug==1.1.5'):
        Corrupt('fog', 1)
