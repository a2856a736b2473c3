"""MaskCLIP+'s head: any mmseg decode head, classifying with frozen CLIP text embeddings."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...clip.text_embedding_file import read_text_embeddings
from ..losses import SeparableLossHeadMixin


class TextEmbeddingClassifier(nn.Module):
    """1x1 convolution whose weights are the (frozen) class text embeddings.

    ``bg_embedding``: a learnable background embedding (L2-normalised when
    used) as class 0, for a background no text describes.
    """

    def __init__(self, channels: int, num_text_classes: int,
                 bg_embedding: bool = False):
        super().__init__()
        self.register_buffer('text_embeddings',
                             torch.zeros(num_text_classes, channels))
        self.bg_embedding = (nn.Parameter(torch.randn(1, channels))
                             if bg_embedding else None)

    def forward(self, feat: Tensor) -> Tensor:
        if not self.text_embeddings.any():
            raise RuntimeError(
                'MaskClipPlusHead has no text embeddings: give '
                'text_embeddings_path, or train it inside MaskClipPlus, which '
                "copies its teacher's embeddings")
        weight = self.text_embeddings
        if self.bg_embedding is not None:
            weight = torch.cat([F.normalize(self.bg_embedding, dim=-1), weight])
        return F.conv2d(feat, weight[:, :, None, None].to(feat.dtype))


@MODELS.register_module()
class MaskClipPlusHead(SeparableLossHeadMixin, BaseDecodeHead):
    """Any mmseg decode head, classifying with the frozen text embeddings.

    ``decode_module`` (``ASPPV2Head``, ``DepthwiseSeparableASPPHead`` ...)
    gets this head's ``in_channels``, ``channels``, ``num_classes``,
    ``in_index``, ``dropout_ratio``, ``norm_cfg`` and ``align_corners``; its
    ``conv_seg`` becomes a :class:`TextEmbeddingClassifier`, so ``channels``
    must equal ``text_channels``. The embeddings come from
    ``text_embeddings_path`` (``[K, C]``) or from MaskClipPlus's teacher.

    Args:
        decode_module: config of the wrapped decode head.
        text_channels: width of the text embeddings (CLIP's embedding width).
        bg_embedding: prepend a learnable background class (counted in
            ``num_classes``).
        text_embeddings_path: optional ``[K, C]`` embedding file.
    """

    def __init__(self,
                 decode_module: dict,
                 text_channels: int,
                 bg_embedding: bool = False,
                 text_embeddings_path: Optional[str] = None,
                 **kwargs):
        kwargs.setdefault('init_cfg', None)
        super().__init__(**kwargs)
        if self.channels != text_channels:
            raise ValueError(
                f'MaskClipPlusHead: channels ({self.channels}) must equal '
                f'text_channels ({text_channels}), the classifier is the text '
                f'embeddings')
        del self.conv_seg
        module = dict(decode_module)
        module.update(
            in_channels=kwargs['in_channels'],
            channels=self.channels,
            num_classes=self.num_classes,
            in_index=self.in_index,
            dropout_ratio=self.dropout_ratio,
            align_corners=self.align_corners)
        if self.norm_cfg is not None:
            module.setdefault('norm_cfg', self.norm_cfg)
        self.decode_module = MODELS.build(module)
        self.text_embeddings_path = text_embeddings_path
        self.num_text_classes = self.num_classes - int(bg_embedding)
        self.decode_module.conv_seg = TextEmbeddingClassifier(
            text_channels, self.num_text_classes, bg_embedding)

    @property
    def classifier(self) -> TextEmbeddingClassifier:
        return self.decode_module.conv_seg

    def set_text_embeddings(self, embeddings: Tensor) -> None:
        """Use ``embeddings`` ``[K, C]`` (L2-normalised rows) as the classifier."""
        target = self.classifier.text_embeddings
        if tuple(embeddings.shape) != tuple(target.shape):
            raise ValueError(
                f'MaskClipPlusHead: text embeddings of shape '
                f'{tuple(embeddings.shape)} do not fit {self.num_text_classes} '
                f'text classes x {target.shape[1]} channels')
        target.copy_(embeddings.to(target))

    def init_weights(self) -> None:
        super().init_weights()
        if self.text_embeddings_path is not None:
            target = self.classifier.text_embeddings
            self.set_text_embeddings(read_text_embeddings(
                self.text_embeddings_path, target.shape[0], target.shape[1],
                'MaskClipPlusHead'))
            print_log(f'text embeddings from {self.text_embeddings_path}',
                      logger='current')

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.decode_module(inputs)

    def forward_with_features(self,
                              inputs: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """The logits and the features the classifier saw ``[B, C, h, w]``."""
        seen = []
        handle = self.classifier.register_forward_pre_hook(
            lambda module, args: seen.append(args[0]))
        try:
            logits = self.decode_module(inputs)
        finally:
            handle.remove()
        return logits, seen[-1]
