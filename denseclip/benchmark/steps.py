"""The measured steps: one row (label, input, a ``step`` callable) per thing timed."""
from typing import List, Sequence

import torch
from mmengine.config import ConfigDict

from .inputs import image_metas, random_label_samples
from .reference_pipeline import (as_ours, as_the_reference,
                                 reference_slide_inference)
from .settings import BenchmarkSettings
from .subjects import Subject


def num_slide_crops(h: int, w: int, crop: Sequence[int],
                    stride: Sequence[int]) -> int:
    """How many crops mmseg's slide inference takes of an ``h x w`` image."""
    rows = max(h - crop[0] + stride[0] - 1, 0) // stride[0] + 1
    cols = max(w - crop[1] + stride[1] - 1, 0) // stride[1] + 1
    return rows * cols


def inference_rows(subject: Subject, mode: str, settings: BenchmarkSettings,
                   device: torch.device) -> List[dict]:
    """The rows of one inference mode (``'whole'`` or ``'slide'``).

    ``whole``: ``batch x 3 x size x size`` with ``test_cfg.mode='whole'``;
    ``slide``: one ``size x 4/3 size`` image (ADE20K's aspect ratio after the
    test resize) with the config's crop and stride. A DenseCLIP subject gets
    a text-cache row and / or a reference row (``settings.text_cache``).
    """
    model, cfg, size = subject.model, subject.cfg, settings.size
    # once, not per step: DenseCLIP drops its text cache on train()/eval()
    model.eval()
    if mode == 'whole':
        h, w, n = size, size, settings.batch
        test_cfg = ConfigDict(cfg.model.test_cfg, mode='whole')
    else:
        h, w, n = size, size * 4 // 3, 1
        if cfg.model.test_cfg.get('mode') != 'slide':
            raise SystemExit(
                f'{subject.config}: test_cfg has no slide setting '
                '(mode, crop_size, stride); drop --modes slide')
        test_cfg = ConfigDict(cfg.model.test_cfg)
    inputs = torch.randn(n, 3, h, w, device=device)
    batch_metas = image_metas(h, w, n)
    label = f'inference {mode}'
    if mode == 'slide':
        crop, stride = test_cfg['crop_size'], test_cfg['stride']
        num = num_slide_crops(h, w, crop, stride)
        label += (f' ({num} crop{"s" if num > 1 else ""} of '
                  f'{crop[0]}x{crop[1]})')
    variants = ({'on': [False], 'off': [True], 'both': [False, True]}
                [settings.text_cache] if subject.is_denseclip else [False])
    rows = []
    for reference in variants:

        def step(reference=reference):
            model.test_cfg = test_cfg
            if reference:
                as_the_reference(model)
            try:
                with torch.no_grad():
                    if reference and mode == 'slide':
                        reference_slide_inference(model, inputs, batch_metas)
                    else:
                        model.inference(inputs, batch_metas)
            finally:
                if reference:
                    as_ours(model)

        row_label = label
        if reference:
            row_label += (', reference pipeline (text per crop, 1 at a time)'
                          if mode == 'slide' else
                          ', reference (text encoder on every forward)')
        elif subject.is_denseclip:
            row_label += ', text cache'
        rows.append(dict(model=subject.name, mode=mode, label=row_label,
                         input=f'{n}x3x{h}x{w}', images=n,
                         text_cache=(not reference) if subject.is_denseclip
                         else None, reference=reference, step=step))
    return rows


def train_row(subject: Subject, settings: BenchmarkSettings,
              device: torch.device) -> dict:
    """The training-step row: ``train_batch x 3 x size x size`` with random
    labels, forward + backward + the config's optimizer step (builds the
    subject's optimizer wrapper; ``amp``: ``MixedPrecisionOptimWrapper``)."""
    from mmengine.optim import build_optim_wrapper
    model, cfg = subject.model, subject.cfg
    size, n = settings.size, settings.train_batch
    optim_cfg = cfg.optim_wrapper.copy()
    if settings.amp:
        from denseclip.engine.mixed_precision_optim_wrapper import enable_amp
        holder = type('Cfg', (), {})()
        holder.optim_wrapper = optim_cfg
        enable_amp(holder)
    subject.optim = optim = build_optim_wrapper(model, optim_cfg)
    inputs = torch.randn(n, 3, size, size, device=device)
    data_samples = random_label_samples(size, size, n,
                                        subject.model.num_classes, device)

    model.train()

    def step():
        with optim.optim_context(model):
            losses = model.loss(inputs, data_samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.update_params(loss)

    optimizer = cfg.optim_wrapper.optimizer.type
    label = f'train step ({optimizer}'
    if settings.amp:
        label += f', {str(optim.cast_dtype).replace("torch.", "")} autocast'
    label += ')'
    return dict(model=subject.name, mode='train', label=label,
                input=f'{n}x3x{size}x{size}', images=n, text_cache=None,
                reference=False, step=step)
