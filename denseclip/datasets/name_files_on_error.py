"""Name the sample's files when its pipeline fails."""
from typing import Dict, Optional

from mmcv.transforms import Compose
from mmseg.registry import TRANSFORMS

from .check_seg_labels import BadLabelError

_FILE_KEYS = (('img_path', 'image'), ('seg_map_path', 'annotation'))


class SampleError(RuntimeError):
    """A data pipeline failed on one sample; the message names its files."""


@TRANSFORMS.register_module()
class NameFilesOnError(Compose):
    """Run ``transforms`` like ``Compose``; an error names the sample's files.

    Decoding errors of broken files name nothing: an empty image gives
    OpenCV's ``(-215:Assertion failed) !buf.empty() in function 'imdecode_'``,
    a truncated PNG annotation Pillow's ``image file is truncated``. Wrapped
    around a dataset's pipeline, any error is re-raised as a
    :class:`SampleError` that starts with the image and annotation paths
    (the original error is chained). ``tools/train.py`` and ``tools/test.py``
    wrap every dataloader's pipeline (``denseclip.engine.add_data_checks``).
    """

    def transform(self, results: Dict) -> Optional[Dict]:
        try:
            return super().transform(results)
        except (SampleError, BadLabelError):  # they name the file already
            raise
        except Exception as err:
            files = [f'{name} {results[key]}' for key, name in _FILE_KEYS
                     if results.get(key)]
            raise SampleError(
                f'{", ".join(files) or "a sample without file names"}: '
                f'{type(err).__name__}: {err}') from err
