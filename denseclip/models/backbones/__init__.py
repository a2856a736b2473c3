from .clip_resnet import CLIPResNet, CLIPResNetWithAttention
from .clip_vit import CLIPVisionTransformer

__all__ = ['CLIPResNet', 'CLIPResNetWithAttention', 'CLIPVisionTransformer']
