from .denseclip import DenseCLIP
from .maskclip_plus import MaskClipPlus
from .separable_loss_segmentor import SeparableLossSegmentorMixin
from .training_free_segmentor import TrainingFreeSegmentor
from .training_free_tta import TrainingFreeTTAModel

__all__ = ['DenseCLIP', 'MaskClipPlus', 'SeparableLossSegmentorMixin',
           'TrainingFreeSegmentor', 'TrainingFreeTTAModel']
