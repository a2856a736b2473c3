from .decode_head_loss import (SeparableLossHeadMixin, decode_head_loss,
                               decode_head_loss_by_feat, head_loss_by_feat)
from .pixel_cross_entropy import pixel_cross_entropy
from .separable_resize import bilinear_weights, separable_resize
from .top1_accuracy import top1_accuracy

__all__ = [
    'SeparableLossHeadMixin', 'bilinear_weights', 'decode_head_loss',
    'decode_head_loss_by_feat', 'head_loss_by_feat', 'pixel_cross_entropy',
    'separable_resize', 'top1_accuracy'
]
