"""Train a toy CLIP contrastively on toy image-caption pairs, on a CPU in minutes.

OpenAI's recipe at toy scale: both towers from scratch with CLIP's
initialisation, the symmetric InfoNCE loss over a batch (image -> caption and
caption -> image cross-entropy) with a learnable temperature (``logit_scale``,
starting at ``1 / 0.07``, clamped at 100), AdamW with warm-up and cosine
decay. The pairs come from :mod:`denseclip.toy.captions`: fresh toy images at
every step, captions naming what was drawn. No class map is ever used.

The result is an :class:`~denseclip.toy.clip_model.OpenAICLIP` that
:func:`~denseclip.toy.clip_model.write_clip_checkpoint` writes in OpenAI's format;
MaskCLIP reads it like ``RN50.pt`` (``tools/toy_demo.py`` trains and caches it).
"""
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..clip.normalization import CLIP_MEAN, CLIP_STD
from ..clip.tokenizer import tokenize
from .captions import (content_caption, make_captioned_batch,
                           scene_contents)
from .clip_model import (TRAINED_RESNET, TRAINED_VIT, OpenAICLIP,
                       _ModifiedResNet)
from .data import draw_toy_scene

Log = Callable[[str], None]
# raise when a change here changes what a recipe trains (cached toy CLIPs
# of an older version are trained anew)
TRAINING_VERSION = 2


@dataclass(frozen=True)
class ToyClipRecipe:
    """A toy CLIP's shape (:class:`OpenAICLIP` arguments) and how it is trained.

    Attributes:
        shape: ``OpenAICLIP`` keyword arguments.
        steps, batch_size, lr, warmup, weight_decay: the optimisation (AdamW,
            linear warm-up over ``warmup`` steps, then cosine decay to 0).
        image_size: side of the square training images.
        background_only: fraction of images without shapes.
        name_background: probability that a caption of an image with shapes
            ends with ``'on a textured background'``.
        templates: prompt templates the captions are put in.
        seed: seeds the initial weights and the image-caption stream.
    """
    shape: Dict = field(default_factory=dict)
    steps: int = 150
    batch_size: int = 128
    image_size: int = 64
    lr: float = 1e-3
    warmup: int = 20
    weight_decay: float = 0.1
    background_only: float = 0.3
    name_background: float = 0.5
    templates: str = 'imagenet85'
    seed: int = 0

    def to_dict(self) -> dict:
        """JSON-ready settings (a manifest compares them to decide on reuse)."""
        settings = asdict(self)
        settings['shape'] = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in self.shape.items()
        }
        return settings

    def replace(self, **changes) -> 'ToyClipRecipe':
        return replace(self, **changes)


# The toy CLIPs MaskCLIP and MaskCLIP+ run on (tools/toy_demo.py).
TOY_CLIP_RECIPES = {
    'RN': ToyClipRecipe(shape=TRAINED_RESNET, steps=150, batch_size=64),
    'ViT': ToyClipRecipe(shape=TRAINED_VIT, steps=300, batch_size=64,
                         lr=1e-3, warmup=40),
}


def initialize_clip_parameters(model: OpenAICLIP) -> None:
    """OpenAI's ``CLIP.initialize_parameters``: CLIP's initialisation."""
    nn.init.normal_(model.token_embedding.weight, std=0.02)
    nn.init.normal_(model.positional_embedding, std=0.01)
    visual = model.visual
    if isinstance(visual, _ModifiedResNet):
        pool = visual.attnpool
        std = pool.c_proj.in_features**-0.5
        for proj in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
            nn.init.normal_(proj.weight, std=std)
        for stage in (visual.layer1, visual.layer2, visual.layer3,
                      visual.layer4):
            for name, param in stage.named_parameters():
                if name.endswith('bn3.weight'):
                    nn.init.zeros_(param)
    blocks = model.transformer.resblocks
    width = model.ln_final.normalized_shape[0]
    proj_std = width**-0.5 * (2 * len(blocks))**-0.5
    for block in blocks:
        nn.init.normal_(block.attn.in_proj_weight, std=width**-0.5)
        nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width)**-0.5)
        nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
    nn.init.normal_(model.text_projection, std=width**-0.5)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1 / 0.07))


def clip_loss(logits_per_image: Tensor, logits_per_text: Tensor) -> Tensor:
    """CLIP's symmetric InfoNCE: pair ``i`` of the batch is the positive of
    row and column ``i``; the mean of both directions' cross-entropy."""
    labels = torch.arange(logits_per_image.shape[0],
                          device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, labels) +
            F.cross_entropy(logits_per_text, labels)) / 2


def to_clip_input(images: np.ndarray) -> Tensor:
    """RGB uint8 images ``[N, H, W, 3]`` -> CLIP-normalised ``[N, 3, H, W]``."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def encode_text_trimmed(model: OpenAICLIP, tokens: Tensor) -> Tensor:
    """``model.encode_text(tokens)`` computed on the positions up to the
    longest text's end-of-text token only.

    Exact: the text attention is causal and the feature is read at the
    end-of-text token, so the padding after it changes nothing (captions
    take ~20 of the 77 positions: the text tower runs several times faster).
    """
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    x = model.token_embedding(tokens) + model.positional_embedding[:length]
    x = x.permute(1, 0, 2)  # sequence first, as OpenAI's
    for block in model.transformer.resblocks:
        y = block.ln_1(x)
        x = x + block.attn(y, y, y, need_weights=False,
                           attn_mask=block.attn_mask[:length, :length])[0]
        x = x + block.mlp(block.ln_2(x))
    x = model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(x.shape[0]),
             tokens.argmax(dim=-1)] @ model.text_projection


def clip_logits(model: OpenAICLIP, images: Tensor,
                tokens: Tensor) -> Tuple[Tensor, Tensor]:
    """``model(images, tokens)``: image-text and text-image logits, scaled
    by the learnable temperature (text on the trimmed positions)."""
    image_features = F.normalize(model.encode_image(images), dim=-1)
    text_features = F.normalize(encode_text_trimmed(model, tokens), dim=-1)
    logits = model.logit_scale.exp() * image_features @ text_features.t()
    return logits, logits.t()


def _lr_factor(step: int, recipe: ToyClipRecipe) -> float:
    if step < recipe.warmup:
        return (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def train_toy_clip(recipe: ToyClipRecipe,
                   log: Optional[Log] = print,
                   log_every: int = 25) -> OpenAICLIP:
    """A toy CLIP trained by ``recipe``, in eval mode.

    Logs the loss, the in-batch image -> caption accuracy and the temperature
    every ``log_every`` steps, with the time left. Seeded: the same recipe
    gives the same model on the same machine and thread count.
    """
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    model = OpenAICLIP(**recipe.shape)
    initialize_clip_parameters(model)
    model.train()
    # The captions use a few dozen of the 49408 token embeddings: their
    # gradient is sparse and lazy Adam updates only the rows used (the others
    # keep CLIP's initialisation); AdamW on all of them costs more than the
    # text tower itself.
    embedding = model.token_embedding
    embedding.sparse = True
    decay = [p for p in model.parameters()
             if p.ndim >= 2 and p is not embedding.weight]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    adam = dict(lr=recipe.lr, betas=(0.9, 0.98), eps=1e-6)
    optimizers = [
        torch.optim.AdamW(
            [dict(params=decay, weight_decay=recipe.weight_decay),
             dict(params=no_decay, weight_decay=0.)], **adam),
        torch.optim.SparseAdam([embedding.weight], **adam)
    ]
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _lr_factor(step, recipe))
        for optimizer in optimizers
    ]
    max_scale = math.log(100)
    start = time.time()
    for step in range(1, recipe.steps + 1):
        images, captions = make_captioned_batch(
            rng, recipe.batch_size, recipe.image_size, recipe.background_only,
            recipe.name_background, recipe.templates)
        x = to_clip_input(images)
        flip = torch.from_numpy(rng.random(len(x)) < 0.5)[:, None, None, None]
        x = torch.where(flip, x.flip(3), x)  # captions say nothing of sides
        tokens = tokenize(captions, model.context_length)
        logits_per_image, logits_per_text = clip_logits(model, x, tokens)
        loss = clip_loss(logits_per_image, logits_per_text)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer, scheduler in zip(optimizers, schedulers):
            optimizer.step()
            scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, max_scale)
        if log is not None and (step % log_every == 0 or
                                step == recipe.steps):
            elapsed = time.time() - start
            acc = (logits_per_image.argmax(1) == torch.arange(len(x))).float()
            log(f'  step {step}/{recipe.steps}  loss {loss.item():.3f}  '
                f'in-batch match {acc.mean().item():.0%}  temperature '
                f'1/{model.logit_scale.exp().item():.1f}  {elapsed:.0f} s, '
                f'~{elapsed / step * (recipe.steps - step):.0f} s left')
    embedding.sparse = False
    return model.eval()


@torch.no_grad()
def content_retrieval_accuracy(model: OpenAICLIP,
                               num_images: int = 200,
                               image_size: int = 64,
                               seed: int = 12345) -> float:
    """How often an image's embedding is closest to the caption of what it holds.

    Fresh toy images (0 to 3 shapes, from a seed the training does not use)
    are matched against one caption per possible content
    (:func:`~denseclip.toy.captions.scene_contents`: 16, so chance is 1/16):
    ``'a photo of a red disc and a blue triangle.'``, ...,
    ``'a photo of a textured background.'``. Returns the top-1 accuracy.
    """
    model.eval()
    contents = scene_contents()
    tokens = tokenize([content_caption(c) for c in contents],
                      model.context_length)
    text = F.normalize(encode_text_trimmed(model, tokens), dim=-1)
    rng = np.random.default_rng(seed)
    images, truth = [], []
    for i in range(num_images):
        image, _, drawn = draw_toy_scene(rng, (image_size, image_size),
                                         num_shapes=i % 4)
        images.append(image)
        truth.append(contents.index(tuple(sorted(set(drawn)))))
    feats = F.normalize(model.encode_image(to_clip_input(np.stack(images))),
                        dim=-1)
    best = (feats @ text.t()).argmax(dim=1)
    return (best == torch.tensor(truth)).float().mean().item()
