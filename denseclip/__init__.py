"""denseclip: DenseCLIP and MaskCLIP / MaskCLIP+ for MMSegmentation 1.x.

Importing the package registers every module in ``mmseg.registry.MODELS``
(use ``custom_imports=dict(imports=['denseclip'])`` in a config).
"""
from . import engine, models  # noqa: F401  (registers the modules)
from .version import __version__

__all__ = ['__version__', 'models']
