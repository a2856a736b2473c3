"""Train the toy VFM without labels: DINO's self-distillation at patch level.

Two augmented views of each toy training image (random resized crops, flips,
colour jitter that keeps hue) go through a student ViT
(:class:`~denseclip.toy.vfm_model.ToyViT` plus a DINO projection head) and a
teacher (its exponential moving average). For every student patch, the
teacher's output at the same place of the image in the *other* view (known
from the crop parameters, sampled bilinearly) is the target: the teacher's
prototype distribution, centred and sharpened, and the student's
cross-entropy to it is the loss (DINO's, per patch instead of per image, as
iBOT's and Leopart's dense losses). No label is ever read.

Why this makes patch features that group the pixels of one object:

* the target is a distribution over a few dozen prototypes, sharpened: the
  patches are *clustered*, and a patch is asked to fall in the cluster of
  what is under it in another view, whatever its position, brightness and
  contrast there. Nothing pushes two patches of the same object apart (a
  per-patch contrastive loss would: every other patch is a negative, and
  its features learn where a patch is rather than what);
* the crops move, flip and rescale the content: cluster membership cannot
  depend on position or scale;
* brightness and contrast change by up to 40 % and saturation by 20 %, but
  hue never: the toy's background is grey noise whose brightness varies
  across an image, its classes differ by colour (and the ring by form);
  the features should forget brightness and keep hue.

The recipe is tuned on data seed 0 only (``tools/toy_vfm.py``;
``docs/toy_vfm.md``). ``train_toy_vfm`` trains on one data seed's training
images and caches the result as a plain DINO-layout state dict.
"""
import copy
import glob
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.atomic_files import atomic_path, write_json_atomic
from .vfm_model import ToyViT, imagenet_normalize

Log = Callable[[str], None]
# raise when a change of the code changes what a recipe trains (cached toy
# VFMs of an older version are trained anew)
VFM_TRAINING_VERSION = 1


@dataclass(frozen=True)
class ToyVFMRecipe:
    """The toy VFM's shape and its self-supervised training.

    Attributes:
        patch_size, width, depth, mlp_ratio: the ViT (heads: one per 64
            channels).
        image_size: side of the square views (the position table's grid).
        steps, batch_size, lr, warmup, weight_decay: AdamW, linear warm-up
            then cosine decay to 0; gradients clipped at ``clip_grad``.
        crop_scale: area fraction range of the random resized crops.
        brightness, contrast, saturation: colour jitter factors, each drawn
            from ``[1 - x, 1 + x]``; no hue jitter.
        prototypes, head_hidden, head_bottleneck: DINO's head (an MLP, an L2
            normalised bottleneck, a normalised prototype layer).
        student_temp, teacher_temp, center_momentum: DINO's temperatures and
            centring.
        ema: the teacher's momentum at the start (cosine to 1 at the end).
        num_images: train on the first ``num_images`` training images only
            (None: all).
        seed: seeds the weights and the augmentations.
    """
    patch_size: int = 8
    width: int = 64
    depth: int = 3
    mlp_ratio: float = 4.0
    image_size: int = 96
    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.04
    clip_grad: float = 3.0
    crop_scale: Tuple[float, float] = (0.15, 1.0)
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    prototypes: int = 64
    head_hidden: int = 256
    head_bottleneck: int = 64
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    ema: float = 0.99
    num_images: Optional[int] = None
    seed: int = 0

    def to_dict(self) -> Dict:
        """JSON-ready settings (a manifest compares them for reuse)."""
        settings = asdict(self)
        settings['crop_scale'] = list(self.crop_scale)
        return settings

    def replace(self, **changes) -> 'ToyVFMRecipe':
        return replace(self, **changes)


TOY_VFM_RECIPE = ToyVFMRecipe()


def build_toy_vit(recipe: ToyVFMRecipe, seed: Optional[int] = None) -> ToyViT:
    """The recipe's ViT with DINO's initialisation (seeded by ``seed``,
    default the recipe's)."""
    torch.manual_seed(recipe.seed if seed is None else seed)
    return ToyViT(recipe.patch_size, recipe.width, recipe.depth,
                  recipe.image_size, recipe.mlp_ratio)


class DinoHead(nn.Module):
    """DINO's projection head: MLP, L2-normalised bottleneck, then cosine
    logits against L2-normalised prototypes (``norm_last_layer``)."""

    def __init__(self, width: int, hidden: int, bottleneck: int,
                 prototypes: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden),
            nn.GELU(), nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.randn(prototypes, bottleneck))

    def forward(self, x: Tensor) -> Tensor:  # [..., C] -> [..., K]
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).t()


class _Student(nn.Module):

    def __init__(self, vit: ToyViT, head: DinoHead):
        super().__init__()
        self.vit = vit
        self.head = head

    def forward(self, images: Tensor) -> Tensor:
        """Prototype logits ``[B, K, h, w]`` of each patch."""
        f = self.vit(images)
        return self.head(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def load_training_images(data_root: str,
                         num_images: Optional[int] = None) -> Tensor:
    """The toy dataset's training images (ADE20K layout), sorted by name:
    RGB ``[N, 3, H, W]`` float in 0..1. Labels are not read."""
    paths = sorted(glob.glob(osp.join(data_root, 'images', 'training',
                                      '*.jpg')))
    if num_images is not None:
        paths = paths[:num_images]
    if not paths:
        raise FileNotFoundError(f'no training images under {data_root}')
    images = np.stack([cv2.imread(p)[..., ::-1] for p in paths])
    return torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float() / 255


def random_views(images: Tensor, recipe: ToyVFMRecipe,
                 gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """One augmented view of each image: ImageNet-normalised
    ``[B, 3, S, S]`` and its geometry ``[B, 4]`` (centre x, y and signed
    half-sizes x, y in the image's normalised coordinates, -1..1; a negative
    x half-size is a horizontal flip)."""
    B = images.shape[0]
    lo, hi = recipe.crop_scale
    area = lo + (hi - lo) * torch.rand(B, generator=gen)
    log_ratio = (torch.rand(B, generator=gen) * 2 - 1) * math.log(4 / 3)
    ratio = log_ratio.exp()
    half_w = (area * ratio).sqrt().clamp(max=1)
    half_h = (area / ratio).sqrt().clamp(max=1)
    cx = (torch.rand(B, generator=gen) * 2 - 1) * (1 - half_w)
    cy = (torch.rand(B, generator=gen) * 2 - 1) * (1 - half_h)
    flip = torch.where(torch.rand(B, generator=gen) < 0.5, -1.0, 1.0)
    geometry = torch.stack([cx, cy, half_w * flip, half_h], dim=1)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = geometry[:, 2], cx
    theta[:, 1, 1], theta[:, 1, 2] = half_h, cy
    size = recipe.image_size
    grid = F.affine_grid(theta, [B, 3, size, size], align_corners=False)
    x = F.grid_sample(images, grid, mode='bilinear', padding_mode='border',
                      align_corners=False)

    def factor(strength: float) -> Tensor:
        return (1 + (torch.rand(B, generator=gen) * 2 - 1) *
                strength).view(B, 1, 1, 1)

    gray_weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x = x * factor(recipe.brightness)
    mean = (x * gray_weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (x - mean) * factor(recipe.contrast) + mean
    gray = (x * gray_weights).sum(1, keepdim=True)
    x = (x - gray) * factor(recipe.saturation) + gray
    return imagenet_normalize(x.clamp(0, 1)), geometry


def corresponding_points(src: Tensor, dst: Tensor,
                         grid: int) -> Tuple[Tensor, Tensor]:
    """Where the patch centres of views ``src`` lie in views ``dst``
    (geometries ``[B, 4]`` of :func:`random_views`): normalised
    ``grid_sample`` coordinates ``[B, grid, grid, 2]`` and whether each lies
    inside the other view ``[B, grid, grid]``."""
    centres = (torch.arange(grid, dtype=torch.float32) + 0.5) * 2 / grid - 1
    v, u = torch.meshgrid(centres, centres, indexing='ij')
    # view -> image: centre + half-size * u, then image -> the other view
    x = src[:, 0, None, None] + src[:, 2, None, None] * u
    y = src[:, 1, None, None] + src[:, 3, None, None] * v
    ux = (x - dst[:, 0, None, None]) / dst[:, 2, None, None]
    uy = (y - dst[:, 1, None, None]) / dst[:, 3, None, None]
    points = torch.stack([ux, uy], dim=-1)
    inside = (ux.abs() <= 1) & (uy.abs() <= 1)
    return points, inside


def dense_dino_loss(student_logits: Tensor, teacher_logits: Tensor,
                    points: Tensor, inside: Tensor, center: Tensor,
                    student_temp: float, teacher_temp: float) -> Tensor:
    """Cross-entropy from the teacher's centred, sharpened prototype
    distribution of the other view, sampled at ``points``, to the student's,
    averaged over the patches ``inside`` the other view."""
    target = F.grid_sample(teacher_logits, points, mode='bilinear',
                           align_corners=False)
    target = ((target - center.view(1, -1, 1, 1)) / teacher_temp).softmax(1)
    log_p = (student_logits / student_temp).log_softmax(1)
    per_patch = -(target * log_p).sum(1)
    mask = inside.float()
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)


def _lr_factor(step: int, recipe: ToyVFMRecipe) -> float:
    if step < recipe.warmup:
        return (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def train_vfm(recipe: ToyVFMRecipe, images: Tensor,
              log: Optional[Log] = print,
              log_every: int = 50) -> Tuple[ToyViT, Dict]:
    """Train the recipe's ViT on ``images`` (RGB 0..1 ``[N, 3, H, W]``).

    Returns the student ViT in eval mode and a summary (``losses``: the loss
    of every step, ``seconds``). Logs ``[toy-vfm] step k/n loss x`` every
    ``log_every`` steps and at the last. Seeded: the same recipe and images
    give the same weights on the same machine and thread count.
    """
    vit = build_toy_vit(recipe)
    head = DinoHead(recipe.width, recipe.head_hidden, recipe.head_bottleneck,
                    recipe.prototypes)
    student = _Student(vit, head).train()
    teacher = copy.deepcopy(student).requires_grad_(False)
    gen = torch.Generator().manual_seed(recipe.seed)
    decay = [p for p in student.parameters() if p.ndim >= 2]
    no_decay = [p for p in student.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [dict(params=decay, weight_decay=recipe.weight_decay),
         dict(params=no_decay, weight_decay=0.)], lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, recipe))
    center = torch.zeros(recipe.prototypes)
    grid = recipe.image_size // recipe.patch_size
    losses = []
    start = time.time()
    for step in range(1, recipe.steps + 1):
        idx = torch.randint(len(images), (recipe.batch_size, ), generator=gen)
        batch = images[idx]
        x1, g1 = random_views(batch, recipe, gen)
        x2, g2 = random_views(batch, recipe, gen)
        with torch.no_grad():
            t1, t2 = teacher(torch.cat([x1, x2])).chunk(2)
        s1, s2 = student(torch.cat([x1, x2])).chunk(2)
        p12, in12 = corresponding_points(g1, g2, grid)
        p21, in21 = corresponding_points(g2, g1, grid)
        loss = (dense_dino_loss(s1, t2, p12, in12, center,
                                recipe.student_temp, recipe.teacher_temp) +
                dense_dino_loss(s2, t1, p21, in21, center,
                                recipe.student_temp, recipe.teacher_temp)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), recipe.clip_grad)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            momentum = 1 - (1 - recipe.ema) * (
                math.cos(math.pi * step / recipe.steps) + 1) / 2
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)
            batch_center = torch.cat([t1, t2]).mean((0, 2, 3))
            center.mul_(recipe.center_momentum).add_(
                batch_center, alpha=1 - recipe.center_momentum)
        losses.append(loss.item())
        if log is not None and (step % log_every == 0 or
                                step == recipe.steps):
            elapsed = time.time() - start
            log(f'[toy-vfm] step {step}/{recipe.steps} loss {loss.item():.4f}'
                f'  {elapsed:.0f} s, '
                f'~{elapsed / step * (recipe.steps - step):.0f} s left')
    return vit.eval(), dict(losses=losses, seconds=time.time() - start)


def toy_vfm_path(work_dir: str, data_seed: int = 0) -> str:
    """``WORK_DIR/vfm/toy_vfm.pth`` (data seed 0), ``toy_vfm_seed<N>.pth``."""
    name = 'toy_vfm.pth' if data_seed == 0 else f'toy_vfm_seed{data_seed}.pth'
    return osp.join(work_dir, 'vfm', name)


def _read_manifest(path: str) -> Optional[Dict]:
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def train_toy_vfm(work_dir: str,
                  data_seed: int = 0,
                  seed: int = 0,
                  steps: Optional[int] = None,
                  recipe: ToyVFMRecipe = TOY_VFM_RECIPE,
                  log: Optional[Log] = print) -> str:
    """Train (or reuse) the toy VFM on the training images of ``data_seed``'s
    toy dataset (``prepare_toy_files(work_dir, data_seed)``; no labels).

    Writes :func:`toy_vfm_path` (a plain state dict in DINO's names, nothing
    else) through a temporary file, then its manifest ``<same name>.json``
    (recipe, code version, data seed, training time, final loss). Reused
    while the manifest records the same recipe, version and data seed.
    ``seed`` and ``steps`` override the recipe's. Returns the file's path.
    """
    from .files import prepare_toy_files
    recipe = recipe.replace(seed=seed)
    if steps is not None:
        recipe = recipe.replace(steps=steps)
    path = toy_vfm_path(work_dir, data_seed)
    manifest_path = osp.splitext(path)[0] + '.json'
    wanted = dict(recipe=recipe.to_dict(), version=VFM_TRAINING_VERSION,
                  data_seed=data_seed)
    recorded = _read_manifest(manifest_path)
    if recorded is not None and all(recorded.get(k) == v
                                    for k, v in wanted.items()) and \
            osp.isfile(path):
        if log is not None:
            log(f'[toy-vfm] reusing {path} (trained in '
                f'{recorded.get("seconds", 0):.0f} s)')
        return path
    if osp.exists(manifest_path):
        os.remove(manifest_path)
    data_root = prepare_toy_files(work_dir, data_seed).data_root
    images = load_training_images(data_root, recipe.num_images)
    if log is not None:
        log(f'[toy-vfm] training on {len(images)} images of data seed '
            f'{data_seed}: {recipe.steps} steps of {recipe.batch_size} view '
            f'pairs, {recipe.image_size}px, patch {recipe.patch_size}, width '
            f'{recipe.width}, {recipe.depth} blocks')
    vit, summary = train_vfm(recipe, images, log=log)
    with atomic_path(path) as tmp:
        torch.save(vit.state_dict(), tmp)
    write_json_atomic(manifest_path, dict(
        wanted, seconds=round(summary['seconds'], 1),
        final_loss=summary['losses'][-1], threads=torch.get_num_threads()))
    return path


def load_toy_vfm(path: str) -> ToyViT:
    """A :class:`ToyViT` with the weights of a toy VFM file (its shape read
    from the tensors), in eval mode."""
    state = torch.load(path, map_location='cpu', weights_only=True)
    patch = state['patch_embed.proj.weight']
    width, patch_size = patch.shape[0], patch.shape[-1]
    depth = 1 + max(int(k.split('.')[1]) for k in state
                    if k.startswith('blocks.'))
    side = math.isqrt(state['pos_embed'].shape[1] - 1)
    mlp_ratio = state['blocks.0.mlp.fc1.weight'].shape[0] / width
    vit = ToyViT(patch_size, width, depth, side * patch_size, mlp_ratio)
    vit.load_state_dict(state)
    return vit.eval()
