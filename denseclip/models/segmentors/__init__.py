from .denseclip import DenseCLIP
from .maskclip_plus import MaskClipPlus
from .separable_loss_segmentor import SeparableLossSegmentorMixin
from .training_free_segmentor import TrainingFreeSegmentor

__all__ = ['DenseCLIP', 'MaskClipPlus', 'SeparableLossSegmentorMixin',
           'TrainingFreeSegmentor']
