"""Inference through ``torch.compile`` (optionally CUDA graphs, autocast, channels-last)."""
import contextlib
import time
from typing import Optional

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .mixed_precision_optim_wrapper import amp_dtype

COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune',
                 'max-autotune-no-cudagraphs')


def segmentor_of(model: nn.Module) -> nn.Module:
    """The ``EncoderDecoder`` inside runner / TTA / DDP wrappers."""
    while not hasattr(model, 'encode_decode') and hasattr(model, 'module'):
        model = model.module
    if not hasattr(model, 'encode_decode') or not hasattr(model,
                                                          'decode_head'):
        raise TypeError(f'compile_for_inference: {type(model).__name__} is '
                        'no mmseg EncoderDecoder (no encode_decode / '
                        'decode_head)')
    return model


def compile_for_inference(model: nn.Module,
                          mode: Optional[str] = 'default',
                          amp: bool = False,
                          channels_last: bool = False) -> nn.Module:
    """Run ``model``'s ``encode_decode`` (whole and slide inference, TTA) through
    a compiled function of tensors; returns the segmentor, changed in place.
    A segmentor with ``head_logits`` (``TrainingFreeSegmentor``) gets the
    compiled function there too.

    What is compiled is the network from image to decode-head logits at the
    head's resolution: ``decode_logits(inputs, text)`` for DenseCLIP (the
    cached text features come in as a tensor, computed eagerly), else
    ``decode_head.forward(extract_feat(inputs))``. The resize to the image
    size and everything after it stay eager, as mmseg runs them. Compilation
    happens on the first forward of each input shape (tens of seconds).

    Args:
        model: an mmseg ``EncoderDecoder`` (or a wrapper holding one).
        mode: ``torch.compile`` mode: ``'default'``; ``'reduce-overhead'``
            (CUDA graphs: the fastest on a GPU, where inference is bound by
            kernel launches); ``'max-autotune'`` (very long compilation);
            None: no compilation (only ``amp`` / ``channels_last``).
        amp: autocast the compiled part (bfloat16 where supported, else
            float16); the logits are returned in float32.
        channels_last: convert conv weights and inputs to channels-last.
    """
    if mode is not None and mode not in COMPILE_MODES:
        raise ValueError(f'compile_for_inference: mode must be one of '
                         f'{", ".join(COMPILE_MODES)}, got {mode!r}')
    segmentor = segmentor_of(model)
    device = next(segmentor.parameters()).device
    if hasattr(segmentor, 'decode_logits'):
        core, text_input = segmentor.decode_logits, segmentor.inference_text
    else:
        def core(inputs: Tensor, text=None) -> Tensor:
            return segmentor.decode_head.forward(
                segmentor.extract_feat(inputs))

        def text_input():
            return None

    if mode is not None:
        # dynamic=None: a second input size (whole-image inference, the
        # last, smaller batch of slide crops) recompiles once with dynamic
        # sizes instead of once per size
        core = torch.compile(core, mode=None if mode == 'default' else mode)
    if channels_last:
        segmentor.to(memory_format=torch.channels_last)
    cast = amp_dtype('auto', device) if amp else None
    cuda_graphs = mode is not None and 'autotune-no' not in mode and (
        mode != 'default') and device.type == 'cuda'
    first = [True]

    def head_logits(inputs: Tensor) -> Tensor:
        text = text_input()
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if cuda_graphs:
            # the previous call's outputs have been consumed (resized) already
            torch.compiler.cudagraph_mark_step_begin()
        start = time.perf_counter()
        with (torch.autocast(device.type, dtype=cast)
              if cast is not None else contextlib.nullcontext()):
            logits = core(inputs, text)
        logits = logits.float()
        if first[0] and mode is not None:
            first[0] = False
            print_log(f'compiled inference ({mode}): first forward '
                      f'{time.perf_counter() - start:.1f} s (compilation)',
                      logger='current')
        return logits

    def encode_decode(inputs: Tensor, batch_img_metas) -> Tensor:
        return segmentor.decode_head.predict_by_feat(head_logits(inputs),
                                                     batch_img_metas)

    segmentor.encode_decode = encode_decode
    if hasattr(segmentor, 'head_logits'):
        # TrainingFreeSegmentor's whole inference takes the head's logits
        segmentor.head_logits = head_logits
    return segmentor
