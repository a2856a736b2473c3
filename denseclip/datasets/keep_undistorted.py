"""Keep the crop before photometric distortion, for MaskCLIP+'s pseudo labels."""
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

UNDISTORTED_KEY = 'img_undistorted'


@TRANSFORMS.register_module()
class KeepUndistortedImage(BaseTransform):
    """Copy ``img`` to ``img_undistorted`` for the pseudo labels of MaskCLIP+.

    Put it after the geometric transforms (resize, crop, flip) and right
    before ``PhotoMetricDistortion``, and name ``img_undistorted`` in
    ``PackSegInputs``' ``meta_keys``: ``MaskClipPlus`` then labels the crop
    as it was (its teacher, and the student when it self-trains) and trains
    the student on the distorted crop, so the labels never depend on a
    colour change. On data whose classes differ in colour (the toy's red
    disc and yellow ring, ``hue_delta=18`` is 36 degrees of hue) a distorted
    crop is labelled as another class; see docs/maskclip_plus.md.

    Added keys: ``img_undistorted`` (a copy of ``img``).
    """

    def __init__(self, key: str = UNDISTORTED_KEY):
        self.key = key

    def transform(self, results: dict) -> dict:
        results[self.key] = results['img'].copy()
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(key={self.key!r})'
