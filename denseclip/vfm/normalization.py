"""From CLIP's input statistics to ImageNet's, which DINO and DINOv2 expect.

Our segmentors' data preprocessor normalises images with CLIP's mean and std
(:mod:`denseclip.clip.normalization`). The VFM was trained on ImageNet's,
so, as ProxyCLIP does (``UnNormalize`` with CLIP's values, then
``transforms.Normalize`` with ImageNet's), the image is first brought back
to 0..1 RGB and normalised again: ``(x * clip_std + clip_mean - mean) / std``
per channel, in that order of operations.
"""
import torch
from torch import Tensor

# CLIP's (OpenAI's) on 0..1, as ProxyCLIP writes them
CLIP_MEAN_01 = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD_01 = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NORMS = ('clip', 'imagenet')


def _per_channel(values, like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype,
                        device=like.device).view(1, -1, 1, 1)


def clip_to_imagenet(images: Tensor) -> Tensor:
    """``[B, 3, H, W]`` normalised with CLIP's statistics, normalised with
    ImageNet's instead."""
    rgb = images * _per_channel(CLIP_STD_01, images) + _per_channel(
        CLIP_MEAN_01, images)
    return (rgb - _per_channel(IMAGENET_MEAN, images)) / _per_channel(
        IMAGENET_STD, images)
