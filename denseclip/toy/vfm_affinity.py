"""How well a model's patch affinities group the pixels of one class.

ProxyCLIP's last CLIP block attends with a VFM's patch affinities:
``softmax(gamma * (S - beta * mean(S)))`` over the patches whose cosine
similarity ``S`` is at least ``beta * mean(S)`` (the others are masked;
:class:`~denseclip.models.layers.proxy_attention.ProxyAttention`, beta 1.2,
gamma 3). Those weights mix CLIP's values: the share of a patch's weight
on patches of its own class is how much of its output comes from its own
class. :func:`same_class_share` computes it from features and a class per
patch (the majority label of its pixels: labels are used to measure only);
:func:`affinity_scores` averages it over a toy dataset's validation images
for the toy VFM, and :func:`clip_patch_tokens` gives the toy CLIP's own
tokens to compare with.
"""
import glob
import os.path as osp
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.layers.proxy_attention import (PROXY_BETA, PROXY_GAMMA,
                                             ProxyAttention)
from .vfm_model import ToyViT, imagenet_normalize

# the toy configs' test scale: validation images (120x150) at 2x (240x300)
EVAL_SCALE = 2.0
Features = Callable[[np.ndarray], Tensor]  # RGB uint8 [H, W, 3] -> [C, h, w]


def patch_classes(label: np.ndarray, grid: Tuple[int, int],
                  patch: int) -> Tensor:
    """The majority class of each patch ``[h * w]`` (row-major) of a class map
    ``[H, W]``; pixels beyond ``grid * patch`` are dropped, as the ViT's
    patch embedding drops them."""
    h, w = grid
    blocks = torch.from_numpy(label[:h * patch, :w * patch].astype(np.int64))
    blocks = blocks.reshape(h, patch, w, patch).permute(0, 2, 1, 3)
    blocks = blocks.reshape(h * w, patch * patch)
    counts = F.one_hot(blocks, int(blocks.max()) + 1).sum(1)
    return counts.argmax(1)


def same_class_share(features: Tensor, classes: Tensor,
                     beta: float = PROXY_BETA,
                     gamma: float = PROXY_GAMMA) -> Tensor:
    """Per patch, the share of ProxyCLIP's attention weight (``features``
    ``[C, h, w]`` as the VFM's) that falls on patches of its own class
    (``classes`` ``[h * w]``): ``[h * w]``, 1.0 when all of it does. A row
    whose every affinity is masked (``beta * mean(S) >= 1``) is NaN."""
    weights = ProxyAttention(beta, gamma).weights(features[None].float())[0]
    same = (classes[:, None] == classes[None, :]).float()
    return (weights * same).sum(1)


def summarize_shares(shares: List[Tensor], classes: List[Tensor]) -> Dict:
    """``patch``: the mean share over all patches of all images;
    ``class``: the mean over classes of each class's mean share (the
    background covers most patches; this weighs each class alike);
    ``per_class``: each class's mean share;
    ``masked``: the fraction of patches whose row was all masked (left out)."""
    share = torch.cat(shares)
    cls = torch.cat(classes)
    finite = torch.isfinite(share)
    share, cls = share[finite], cls[finite]
    per_class = {int(c): share[cls == c].mean().item() for c in cls.unique()}
    return dict(patch=share.mean().item(),
                class_mean=float(np.mean(list(per_class.values()))),
                per_class=per_class,
                masked=1 - finite.float().mean().item())


def validation_samples(data_root: str,
                       scale: float = EVAL_SCALE) -> List[Tuple]:
    """The toy dataset's validation images (RGB uint8) and class maps
    (ADE20K's ``label - 1``), resized by ``scale`` (image bilinear, labels
    nearest), sorted by name."""
    paths = sorted(glob.glob(osp.join(data_root, 'images', 'validation',
                                      '*.jpg')))
    if not paths:
        raise FileNotFoundError(f'no validation images under {data_root}')
    samples = []
    for path in paths:
        name = osp.splitext(osp.basename(path))[0]
        image = cv2.imread(path)[..., ::-1]
        ann = cv2.imread(osp.join(data_root, 'annotations', 'validation',
                                  name + '.png'), cv2.IMREAD_GRAYSCALE)
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(np.ascontiguousarray(image), size,
                           interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(ann, size, interpolation=cv2.INTER_NEAREST)
        samples.append((image, label.astype(np.int64) - 1))
    return samples


def vfm_features(vit: ToyViT) -> Features:
    """The toy VFM's patch features of an RGB image, ImageNet-normalised."""

    @torch.no_grad()
    def features(image: np.ndarray) -> Tensor:
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
        return vit.eval()(imagenet_normalize(x / 255))[0]

    return features


def clip_patch_tokens(clip_file: str) -> Tuple[Features, int]:
    """The toy CLIP ViT's last-block input tokens (the residual stream the
    last block reads; patch tokens only) of an RGB image, CLIP-normalised,
    positions resized bilinearly as the toy configs do; and its patch size."""
    from ..clip.normalization import CLIP_MEAN, CLIP_STD
    from ..clip.pos_embed import resize_pos_embed
    from .clip_model import TRAINED_VIT, OpenAICLIP
    model = OpenAICLIP(**TRAINED_VIT)
    state = torch.jit.load(clip_file, map_location='cpu').state_dict()
    model.load_state_dict(state)
    visual = model.visual.eval()
    patch = visual.conv1.kernel_size[0]
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def features(image: np.ndarray) -> Tensor:
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
        x = visual.conv1((x - mean) / std)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        cls = visual.class_embedding.view(1, 1, -1)
        x = torch.cat([cls, x], 1) + resize_pos_embed(
            visual.positional_embedding, (h, w), 'bilinear')
        x = visual.ln_pre(x).permute(1, 0, 2)
        for block in visual.transformer.resblocks[:-1]:
            x = block(x)
        return x[1:, 0].t().reshape(-1, h, w)

    return features, patch


def affinity_scores(features: Features, patch: int,
                    samples: List[Tuple]) -> Dict:
    """:func:`summarize_shares` of ``features`` over ``samples``
    (:func:`validation_samples`)."""
    shares, classes = [], []
    for image, label in samples:
        f = features(image)
        cls = patch_classes(label, tuple(f.shape[-2:]), patch)
        shares.append(same_class_share(f, cls))
        classes.append(cls)
    return summarize_shares(shares, classes)
