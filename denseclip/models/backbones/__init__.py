from .backbone_with_embeddings import BackboneWithEmbeddings
from .clip_resnet import CLIPResNet, CLIPResNetWithAttention
from .clip_vit import CLIPVisionTransformer

__all__ = ['BackboneWithEmbeddings', 'CLIPResNet', 'CLIPResNetWithAttention', 'CLIPVisionTransformer']
