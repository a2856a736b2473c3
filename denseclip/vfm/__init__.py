"""Vision foundation models (DINO, DINOv2) for ProxyCLIP-style methods.

:class:`VisionFoundationModel` (registered in ``mmseg.registry.MODELS``)
gives a VFM's patch features at any input size, reading DINO's, DINOv2's,
timm's and transformers' files (:mod:`.checkpoint`, :mod:`.layouts`), named
in :mod:`.files`. It may import from :mod:`denseclip.clip`, never from
:mod:`denseclip.models`.
"""
from .arch import arch_from_state_dict, read_vfm_arch
from .checkpoint import (VFMCheckpointError, VFMLoadReport, load_vfm_weights,
                         read_vfm_file)
from .files import VFM_FILES, VFMArch, find_vfm_file
from .model import VFMRandomWeightsError, VisionFoundationModel

__all__ = [
    'VFM_FILES', 'VFMArch', 'VFMCheckpointError', 'VFMLoadReport',
    'VFMRandomWeightsError', 'VisionFoundationModel', 'arch_from_state_dict',
    'find_vfm_file', 'load_vfm_weights', 'read_vfm_arch', 'read_vfm_file'
]
