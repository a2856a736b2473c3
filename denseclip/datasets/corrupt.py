"""Corrupt test images (noise, blur, weather, digital), the same way every run.

The corruptions are those of ImageNet-C (Hendrycks and Dietterich, ICLR 2019)
as the ``imagecorruptions`` package implements them for images of any size,
here through its maintained fork ``imagecorruptions-imaug`` (pinned in
``setup.py`` and ``tools/install.sh``; the README says why). MaskCLIP's
robustness study used 8 of them at levels 1-5 (:data:`REFERENCE_CORRUPTIONS`).
"""
import hashlib
import os.path as osp
import threading
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['CORRUPTIONS', 'REFERENCE_CORRUPTIONS', 'SEVERITIES', 'Corrupt',
           'check_corruption', 'corrupt_image', 'corruption_seed']

# the library's names, in its order (get_corruption_names('all')): the 15
# ImageNet-C corruptions, then its 4 "validation" corruptions
CORRUPTIONS: Tuple[str, ...] = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'glass_blur', 'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog',
    'brightness', 'contrast', 'elastic_transform', 'pixelate',
    'jpeg_compression', 'speckle_noise', 'gaussian_blur', 'spatter',
    'saturate')
# the 8 of MaskCLIP's robustness study (its configs/maskclip/corrupt/)
REFERENCE_CORRUPTIONS: Tuple[str, ...] = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise',
    'gaussian_blur', 'defocus_blur', 'spatter', 'jpeg_compression')
SEVERITIES: Tuple[int, ...] = (1, 2, 3, 4, 5)
# the library refuses images smaller than this on either side
_MIN_SIDE = 32
# types that draw from a generator they are given a seed for, instead of
# numpy's global one (scikit-image's random_noise; numba's, in glass_blur)
_SEEDED_BY_ARGUMENT = ('impulse_noise', 'glass_blur')
_LIBRARY = 'imagecorruptions-imaug==1.1.5'
# numpy's global generator is seeded and restored around each call: one call
# at a time per process
_GLOBAL_RNG_LOCK = threading.Lock()


def check_corruption(name: str, level: Optional[int] = None) -> None:
    """Raise ``ValueError`` for an unknown corruption ``name`` (listing the
    valid ones) or a ``level`` outside 1-5."""
    if name not in CORRUPTIONS:
        raise ValueError(
            f'unknown corruption type {name!r}; valid types: '
            f'{", ".join(CORRUPTIONS)}')
    if level is not None and (isinstance(level, bool) or
                              not isinstance(level, (int, np.integer)) or
                              level not in SEVERITIES):
        raise ValueError(f'corruption {name}: level must be an integer in '
                         f'1-5, got {level!r}')


def corruption_seed(key: str, seed: int = 0) -> int:
    """A 32-bit seed from ``key`` (an image's file name) and ``seed``."""
    digest = hashlib.sha256(f'{seed}:{key}'.encode('utf-8')).digest()
    return int.from_bytes(digest[:4], 'little')


def _library():
    try:
        import imagecorruptions
    except ImportError as err:
        raise ImportError(
            f'Corrupt needs the corruption library: pip install "{_LIBRARY}" '
            '(make install does; see the README, Installation)') from err
    return imagecorruptions


def corrupt_image(img: np.ndarray, name: str, level: int, seed: int,
                  channel_order: str = 'bgr',
                  source: Optional[str] = None) -> np.ndarray:
    """``img`` with corruption ``name`` at ``level`` (1-5) drawn from ``seed``.

    ``img``: uint8, ``H x W`` (grayscale), ``H x W x 1``, ``H x W x 3`` or
    ``H x W x 4`` (the alpha channel is kept) in ``channel_order`` (``'bgr'``:
    mmcv's and OpenCV's; ``'rgb'``). The result has the same shape, dtype and
    channel order. ``source`` names the image in errors.

    The library works on RGB (its spatter, frost, brightness and saturate
    colours assume it), on at least 32x32 pixels and on 3 channels: colour
    images are converted, smaller ones padded by mirroring and cropped back,
    grayscale ones stacked to 3 channels and the first channel of the result
    kept (each channel is corrupted at the full strength of the level;
    averaging them would weaken the noise types by about 1/sqrt(3)).
    Everything random is drawn from ``seed``; numpy's global generator is
    restored afterwards.
    """
    check_corruption(name, level)
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f'Corrupt: channel_order must be "bgr" or "rgb", '
                         f'got {channel_order!r}')
    where = f' ({source})' if source else ''
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        kind = img.dtype if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(
            f'Corrupt({name}): the image{where} is {kind}, the corruptions '
            'work on uint8 (load it with color_type="color", not "unchanged")')
    if img.ndim not in (2, 3) or (img.ndim == 3 and
                                  img.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f'Corrupt({name}): the image{where} has shape {img.shape}; '
            'expected H x W, H x W x 1, H x W x 3 or H x W x 4')
    height, width = img.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f'Corrupt({name}): the image{where} is empty '
                         f'({img.shape})')

    gray = img.ndim == 2 or img.shape[2] == 1
    alpha = None
    if gray:
        rgb = np.repeat(img.reshape(height, width, 1), 3, axis=2)
    else:
        rgb, alpha = img[..., :3], (img[..., 3:] if img.shape[2] == 4
                                    else None)
        if channel_order == 'bgr':
            rgb = rgb[..., ::-1]
    pad_h, pad_w = max(0, _MIN_SIDE - height), max(0, _MIN_SIDE - width)
    if pad_h or pad_w:
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode='symmetric')
    rgb = np.ascontiguousarray(rgb)

    library = _library()
    kwargs = dict(seed=seed) if name in _SEEDED_BY_ARGUMENT else {}
    with _GLOBAL_RNG_LOCK:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            out = library.corrupt(rgb, severity=int(level),
                                  corruption_name=name, **kwargs)
        finally:
            np.random.set_state(state)
    out = out[:height, :width]

    if gray:
        out = out[..., 0].reshape(img.shape)
    else:
        if channel_order == 'bgr':
            out = out[..., ::-1]
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=2)
    return np.ascontiguousarray(out, dtype=np.uint8)


@TRANSFORMS.register_module()
class Corrupt(BaseTransform):
    """Corrupt ``results['img']`` with one corruption at one level (1-5).

    Put it right after ``LoadImageFromFile`` in a test pipeline
    (``tools/test.py --corrupt NAME --severity L`` does;
    ``tools/robustness.py`` sweeps types and levels). Arguments as the
    MaskCLIP reference's transform (``name``, ``level``), plus:

    - ``seed``: the corruption of each image is drawn from a seed made of
      ``seed`` and the image's file name (``img_path``'s base name, so the
      same dataset stored elsewhere is corrupted the same way; an image
      without a path: its bytes), not from the level: a run repeats exactly,
      and the levels of one type differ by their strength, not by new random
      draws.
    - ``channel_order``: of ``results['img']``, ``'bgr'`` as mmcv loads it.

    Any size (smaller than 32 pixels: padded and cropped back), grayscale,
    colour and RGBA uint8 images; see :func:`corrupt_image`. All 19 types of
    the library are accepted (:data:`CORRUPTIONS`).

    Required keys: ``img`` (``img_path`` for the seed). Modified keys: ``img``.
    """

    def __init__(self, name: str, level: int, seed: int = 0,
                 channel_order: str = 'bgr'):
        check_corruption(name, level)
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f'Corrupt: channel_order must be "bgr" or '
                             f'"rgb", got {channel_order!r}')
        _library()  # missing: an error when the pipeline is built
        self.name = name
        self.level = int(level)
        self.seed = int(seed)
        self.channel_order = channel_order

    def image_seed(self, results: dict) -> int:
        """The seed of this image's corruption (see the class doc)."""
        path = results.get('img_path')
        if path:
            key = osp.basename(str(path))
        else:
            img = np.ascontiguousarray(results['img'])
            key = 'sha256:' + hashlib.sha256(
                str(img.shape).encode() + img.tobytes()).hexdigest()
        return corruption_seed(key, self.seed)

    def transform(self, results: dict) -> dict:
        results['img'] = corrupt_image(
            results['img'], self.name, self.level, self.image_seed(results),
            self.channel_order, source=results.get('img_path'))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(name={self.name!r}, '
                f'level={self.level}, seed={self.seed}, '
                f'channel_order={self.channel_order!r})')

