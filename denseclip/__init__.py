"""denseclip: DenseCLIP and MaskCLIP / MaskCLIP+ for MMSegmentation 1.x.

Importing the package registers every module in ``mmseg.registry.MODELS``
(use ``custom_imports=dict(imports=['denseclip'])`` in a config).
"""
from . import apis, clip, datasets, engine, evaluation, models  # noqa: F401  (registers)
from . import vfm  # noqa: F401  (registers VisionFoundationModel)
from .engine.checkpoint_compat import allow_mmengine_checkpoint_types
from .moved_modules import alias_moved_modules
from .version import __version__

allow_mmengine_checkpoint_types()  # torch>=2.6: mmengine ckpts, weights_only
alias_moved_modules()  # denseclip.clip_files & co. (issue 18) keep working

__all__ = ['__version__', 'models']
