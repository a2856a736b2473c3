"""A segmentor for training-free (MaskCLIP-style) models: labels brought to
the image's size a few classes at a time, so many class names fit in memory."""
from typing import List, Optional, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

# full-size logits held at once: at most this many classes ...
DEFAULT_CLASS_CHUNK = 64
# ... and this many values (128 MB of float32); at least one class
DEFAULT_CHUNK_NUMEL = 2**25


@MODELS.register_module()
class TrainingFreeSegmentor(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` whose prediction never holds every class's
    logits at the image's size.

    mmseg resizes all ``K`` classes' logits to the input's and then to the
    original image's size (1,000 class names on a 2048x512 input: several
    4 GB tensors; 20 names on an 8000x6000 photo: 3.8 GB each). Here whole
    inference keeps the head's output at its own resolution, and the resizes
    (``decode_head.predict_by_feat``, padding removal, flip, resize to
    ``ori_shape``: mmseg's own steps) run a chunk of classes at a time with a
    running maximum. ``pred_sem_seg`` equals mmseg's argmax exactly (ties go
    to the lower class index).

    ``test_cfg`` options besides mmseg's (``mode``, ``crop_size``, ``stride``):

    - ``class_chunk`` (default 64): at most this many classes per chunk;
      None: mmseg's own post-processing, all classes at once.
    - ``chunk_numel`` (default 2**25): and at most this many full-size
      values per chunk (a large photo takes fewer classes; at least one).

    With chunks, ``seg_logits`` holds the logits at the resolution the model
    computes them (whole: the head's output; slide: the padded input's), not
    at the image's size. mmseg's test-time augmentation merges
    ``seg_logits``: use it with ``class_chunk=None``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.chunk_sizes()  # a bad class_chunk / chunk_numel fails here

    def chunk_sizes(self) -> Tuple[Optional[int], int]:
        """``(class_chunk, chunk_numel)`` from ``test_cfg``, checked."""
        test_cfg = self.test_cfg or {}
        class_chunk = test_cfg.get('class_chunk', DEFAULT_CLASS_CHUNK)
        chunk_numel = test_cfg.get('chunk_numel', DEFAULT_CHUNK_NUMEL)
        for key, value, optional in (('class_chunk', class_chunk, True),
                                     ('chunk_numel', chunk_numel, False)):
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or \
                    value < 1:
                raise ValueError(
                    f'{type(self).__name__}: model.test_cfg.{key} must be a '
                    f'positive integer{" or None" if optional else ""}, got '
                    f'{value!r}')
        return class_chunk, chunk_numel

    @property
    def chunked(self) -> bool:
        """Whether prediction goes by class chunks (not for a 1-class,
        sigmoid model: mmseg's binary path)."""
        return self.chunk_sizes()[0] is not None and self.out_channels > 1

    def head_logits(self, inputs: Tensor) -> Tensor:
        """The decode head's logits at its own resolution ``[B, K, h, w]``."""
        return self.decode_head.forward(self.extract_feat(inputs))

    def whole_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        if not self.chunked:
            return super().whole_inference(inputs, batch_img_metas)
        return self.head_logits(inputs)

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None
                ) -> List[SegDataSample]:
        if data_samples is None and self.chunked:
            # mmseg's metas for bare inputs, so that the labels come at the
            # input's size as mmseg's do
            data_samples = [SegDataSample(metainfo=dict(
                ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0]))
                for _ in range(inputs.shape[0])]
        return super().predict(inputs, data_samples)

    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: Optional[List[SegDataSample]] = None
                           ) -> List[SegDataSample]:
        if data_samples is None or not self.chunked:
            return super().postprocess_result(seg_logits, data_samples)
        batch_img_metas = [sample.metainfo for sample in data_samples]
        at_head_resolution = self.test_cfg.get('mode', 'whole') == 'whole'
        for i, sample in enumerate(data_samples):
            labels = self.chunked_labels(seg_logits[i:i + 1],
                                         batch_img_metas, i,
                                         at_head_resolution)
            sample.set_data({
                'seg_logits': PixelData(data=seg_logits[i]),
                'pred_sem_seg': PixelData(data=labels[None])})
        return data_samples

    def chunked_labels(self, logits: Tensor, batch_img_metas: List[dict],
                       index: int, at_head_resolution: bool) -> Tensor:
        """The ``[H, W]`` labels of image ``index`` at its ``ori_shape``
        from its ``[1, K, h, w]`` logits, a chunk of classes at a time.

        ``at_head_resolution``: the logits are the head's output, first
        resized by ``decode_head.predict_by_feat`` (as mmseg's
        ``encode_decode`` does), else already at the padded input's size.
        """
        meta = batch_img_metas[index]
        class_chunk, chunk_numel = self.chunk_sizes()
        ori_h, ori_w = meta['ori_shape'][:2]
        step = max(1, min(class_chunk, chunk_numel // max(ori_h * ori_w, 1)))
        best = labels = None
        for start in range(0, logits.shape[1], step):
            part = logits[:, start:start + step]
            if at_head_resolution:
                part = self.decode_head.predict_by_feat(part, batch_img_metas)
            part = self._to_original_size(part, meta)
            if best is None:
                best = part[0].clone()
                labels = torch.zeros(best.shape, dtype=torch.long,
                                     device=best.device)
                _merge_running_max(best, labels, part[1:], 1)
            else:
                _merge_running_max(best, labels, part, start)
            del part
        return labels

    def _to_original_size(self, logits: Tensor, meta: dict) -> Tensor:
        """mmseg's ``postprocess_result`` steps for one image's ``[1, c, H,
        W]`` logits: padding removed, flip undone, resized to ``ori_shape``;
        returns ``[c, h, w]``."""
        _, _, H, W = logits.shape
        if 'img_padding_size' not in meta:
            padding_size = meta.get('padding_size', [0] * 4)
        else:
            padding_size = meta['img_padding_size']
        left, right, top, bottom = padding_size
        logits = logits[:, :, top:H - bottom, left:W - right]
        if meta.get('flip', None):
            direction = meta.get('flip_direction', None)
            assert direction in ['horizontal', 'vertical']
            logits = logits.flip(dims=(3, ) if direction == 'horizontal'
                                 else (2, ))
        return resize(logits, size=meta['ori_shape'], mode='bilinear',
                      align_corners=self.align_corners,
                      warning=False).squeeze(0)


def _merge_running_max(best: Tensor, labels: Tensor, part: Tensor,
                       offset: int) -> None:
    """Update the running maximum ``best`` ``[H, W]`` and its ``labels`` in
    place with the classes ``offset ...`` of ``part`` ``[c, H, W]``, one
    class at a time; a tie keeps the earlier (lower) class, as ``argmax``."""
    for k in range(part.shape[0]):
        better = part[k] > best
        labels.masked_fill_(better, offset + k)
        torch.maximum(best, part[k], out=best)
