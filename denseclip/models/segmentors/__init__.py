from .denseclip import DenseCLIP
from .maskclip_plus import MaskClipPlus
from .separable_loss_segmentor import SeparableLossSegmentorMixin

__all__ = ['DenseCLIP', 'MaskClipPlus', 'SeparableLossSegmentorMixin']
