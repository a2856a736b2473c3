from .denseclip import DenseCLIP
from .maskclip_plus import MaskClipPlus

__all__ = ['DenseCLIP', 'MaskClipPlus']
