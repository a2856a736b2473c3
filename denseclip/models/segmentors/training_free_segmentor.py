"""The segmentor of training-free methods (MaskCLIP, SCLIP, ClearCLIP,
NACLIP, SC-CLIP, ProxyCLIP): per-query scores (whole or batched slide
windows), then PAMR, the softmax over all names, the maximum over each
class's synonyms and the background threshold, a chunk of names at a time at
the image's size."""
import time
from numbers import Real
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ..postprocess import PAMR  # noqa: F401  (registers it)
from ..postprocess.resized_crop import resized_crop
from .slide_windows import batched_slide_inference

# an image of at least this many PAMR tiles (4 megapixels with 512-pixel
# tiles: a photo, not a benchmark image) reports PAMR's progress, about ten
# lines: on 2 CPU cores a 48-megapixel photo takes minutes
PAMR_PROGRESS_MIN_TILES = 16

# full-size scores held at once: at most this many names ...
DEFAULT_CLASS_CHUNK = 64
# ... and this many values (128 MB of float32); at least one name
DEFAULT_CHUNK_NUMEL = 2**25
DEFAULT_CROP_BATCH = 8


@MODELS.register_module()
class TrainingFreeSegmentor(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` with the training-free protocol and
    labels that never need every name's scores at the image's size.

    Args:
        logit_scale: probabilities are ``softmax(logit_scale * scores)``
            over all names (not applied to a head that gives probabilities,
            MaskCLIP's key smoothing).
        prob_thd: pixels whose top class probability is below it become
            class 0 (background); 0: off.
        area_thd: per image, classes other than 0 whose predicted area is
            at most this fraction of all non-background predictions are
            dropped before the argmax (SCLIP's VOC21 setting); 0: off.
        pamr: ``dict(type='PAMR', num_iter=10, dilations=(8, 16))`` refines
            the names' scores at the image's size with the image, before the
            softmax; None: off.
        vfm: a vision foundation model (``dict(type=
            'VisionFoundationModel', pretrained=...)``) whose patch features
            the backbone's ``proxyclip`` last block attends with (ProxyCLIP);
            it sees the same (CLIP-normalised) images as the backbone, each
            slide window too. None: no VFM.

    ``test_cfg``: ``mode`` (``'whole'`` | ``'slide'``, ``crop_size``,
    ``stride``), ``crop_batch_size`` (windows per forward, default 8),
    ``class_chunk`` (names per chunk, default 64; None: mmseg's own
    post-processing when no protocol part is on) and ``chunk_numel``.
    Details: docs/maskclip.md, docs/ovss.md.
    """

    def __init__(self, *args, logit_scale: float = 40.,
                 prob_thd: float = 0., pamr: Optional[dict] = None,
                 area_thd: float = 0., vfm: Optional[dict] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        name = type(self).__name__
        block = getattr(self.backbone, 'dense_last_block', None)
        needs_proxy = bool(getattr(block, 'needs_proxy', False))
        if needs_proxy and vfm is None:
            raise ValueError(
                f"{name}: the backbone's dense_last_block mode 'proxyclip' "
                f'attends with a vision foundation model: set model.vfm, e.g. '
                f"dict(type='VisionFoundationModel', pretrained='dino_vitb8')")
        if vfm is not None and not needs_proxy:
            raise ValueError(
                f"{name}: model.vfm is read only by the backbone's "
                f"dense_last_block=dict(mode='proxyclip'); this backbone's "
                f'is {getattr(block, "mode", None)!r}')
        self.vfm = MODELS.build(vfm) if vfm is not None else None
        if isinstance(logit_scale, bool) or not isinstance(
                logit_scale, Real) or logit_scale <= 0:
            raise ValueError(f'{name}: model.logit_scale must be a positive '
                             f'number, got {logit_scale!r}')
        if isinstance(prob_thd, bool) or not isinstance(
                prob_thd, Real) or not 0 <= prob_thd <= 1:
            raise ValueError(f'{name}: model.prob_thd must be a probability '
                             f'in [0, 1], got {prob_thd!r}')
        if isinstance(area_thd, bool) or not isinstance(
                area_thd, Real) or not 0 <= area_thd < 1:
            raise ValueError(f'{name}: model.area_thd must be a fraction in '
                             f'[0, 1), got {area_thd!r}')
        if pamr is not None and not isinstance(pamr, dict):
            raise TypeError(f"{name}: model.pamr must be None or a config "
                            f"dict such as dict(type='PAMR', num_iter=10, "
                            f"dilations=(8, 16)), got {pamr!r}")
        self.logit_scale = float(logit_scale)
        self.prob_thd = float(prob_thd)
        self.area_thd = float(area_thd)
        self.pamr = MODELS.build(pamr) if pamr else None
        self.chunk_sizes()  # a bad class_chunk / chunk_numel fails here
        self.crop_batch_size()

    # ------------------------------------------------------------ settings
    def chunk_sizes(self) -> Tuple[Optional[int], int]:
        """``(class_chunk, chunk_numel)`` from ``test_cfg``, checked."""
        test_cfg = self.test_cfg or {}
        class_chunk = test_cfg.get('class_chunk', DEFAULT_CLASS_CHUNK)
        chunk_numel = test_cfg.get('chunk_numel', DEFAULT_CHUNK_NUMEL)
        for key, value, optional in (('class_chunk', class_chunk, True),
                                     ('chunk_numel', chunk_numel, False)):
            if value is None and optional:
                continue
            _check_positive_int(self, key, value, optional)
        return class_chunk, chunk_numel

    def crop_batch_size(self) -> int:
        """Slide windows per forward (``test_cfg.crop_batch_size``)."""
        value = (self.test_cfg or {}).get('crop_batch_size',
                                          DEFAULT_CROP_BATCH)
        _check_positive_int(self, 'crop_batch_size', value, False)
        return value

    @property
    def query_class(self) -> List[int]:
        """The class of each of the head's score channels (names)."""
        classes = getattr(self.decode_head, 'query_class', None)
        if classes is None:
            return list(range(self.out_channels))
        return classes.tolist()

    @property
    def protocol(self) -> bool:
        """Whether any part of the protocol changes mmseg's argmax:
        synonyms, PAMR, the background or the area threshold."""
        return (self.pamr is not None or self.prob_thd > 0 or
                self.area_thd > 0 or
                len(self.query_class) != self.out_channels)

    @property
    def chunked(self) -> bool:
        """Whether prediction is this class's (else mmseg's own: no
        ``class_chunk`` and no protocol part, or a 1-class sigmoid model)."""
        return self.out_channels > 1 and (
            self.chunk_sizes()[0] is not None or self.protocol)

    @property
    def scores_are_probabilities(self) -> bool:
        return bool(getattr(self.decode_head, 'scores_are_probabilities',
                            False))

    # ----------------------------------------------------------- inference
    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """The backbone's features; with a VFM, the backbone attends with
        its patch features of the same images."""
        if self.vfm is None:
            return super().extract_feat(inputs)
        x = self.backbone(inputs, proxy_features=self.vfm(inputs))
        return self.neck(x) if self.with_neck else x

    def head_logits(self, inputs: Tensor) -> Tensor:
        """The head's per-name scores ``[B, Q, h, w]`` (its resolution)."""
        return self.decode_head.forward(self.extract_feat(inputs))

    def resize_scores(self, scores: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """The head's scores resized to the input, as mmseg's decode head
        does (no per-class reduction)."""
        return BaseDecodeHead.predict_by_feat(self.decode_head, scores,
                                              batch_img_metas)

    def whole_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        if not self.chunked:
            return super().whole_inference(inputs, batch_img_metas)
        return self.head_logits(inputs)

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Per-name scores at the input's size, the windows batched
        (``test_cfg.crop_batch_size``)."""
        if not self.chunked:
            return super().slide_inference(inputs, batch_img_metas)
        crop = tuple(self.test_cfg.crop_size)

        def forward(crops: Tensor) -> Tensor:
            metas = [dict(batch_img_metas[0], img_shape=crops.shape[2:])]
            return self.resize_scores(self.head_logits(crops), metas)

        return batched_slide_inference(
            forward, inputs, crop, tuple(self.test_cfg.stride),
            len(self.query_class), self.crop_batch_size())

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None
                ) -> List[SegDataSample]:
        if not self.chunked:
            return super().predict(inputs, data_samples)
        if data_samples is None:
            # mmseg's metas for bare inputs: labels at the input's size
            data_samples = [SegDataSample(metainfo=dict(
                ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0]))
                for _ in range(inputs.shape[0])]
        batch_img_metas = [sample.metainfo for sample in data_samples]
        scores = self.inference(inputs, batch_img_metas)
        return self.postprocess_result(scores, data_samples, inputs)

    # ------------------------------------------------------------- labels
    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: Optional[List[SegDataSample]] = None,
                           inputs: Optional[Tensor] = None
                           ) -> List[SegDataSample]:
        """Labels from per-name scores. ``seg_logits`` of the samples: the
        class scores (max over synonyms) at the resolution the model
        computes them; with ``class_chunk=None``, class probabilities at the
        image's size. ``inputs``: the images, for PAMR."""
        if data_samples is None or not self.chunked:
            return super().postprocess_result(seg_logits, data_samples)
        if self.pamr is not None and inputs is None:
            raise ValueError(f'{type(self).__name__}: PAMR needs the input '
                             f'images; call predict()')
        batch_img_metas = [sample.metainfo for sample in data_samples]
        at_head_resolution = self.test_cfg.get('mode', 'whole') == 'whole'
        for i, sample in enumerate(data_samples):
            image = inputs[i:i + 1] if self.pamr is not None else None
            if self.chunk_sizes()[0] is None:
                labels, kept = self.full_labels(
                    seg_logits[i:i + 1], image, batch_img_metas, i,
                    at_head_resolution)
            else:
                labels = self.chunked_labels(seg_logits[i:i + 1],
                                             batch_img_metas, i,
                                             at_head_resolution, image)
                kept = self.class_scores(seg_logits[i:i + 1])[0]
            sample.set_data({
                'seg_logits': PixelData(data=kept),
                'pred_sem_seg': PixelData(data=labels[None])})
        return data_samples

    def class_scores(self, scores: Tensor) -> Tensor:
        """Per-class scores from per-name ones (the head's maximum over
        synonyms)."""
        reduce = getattr(self.decode_head, 'class_scores', None)
        return reduce(scores) if reduce is not None else scores

    def image_size_scores(self, scores: Tensor, batch_img_metas: List[dict],
                          index: int, at_head_resolution: bool,
                          affinity: Optional[Tensor]) -> Tensor:
        """``[c, H, W]`` scores at image ``index``'s ``ori_shape`` (mmseg's
        resizes), refined by PAMR with ``affinity``."""
        if at_head_resolution:
            scores = self.resize_scores(scores, batch_img_metas)
        scores = self._to_original_size(scores, batch_img_metas[index])
        if affinity is not None:
            scores = self.pamr.propagate(scores[None], affinity)[0]
        return scores

    def image_affinity(self, image: Optional[Tensor],
                       meta: dict) -> Optional[Tensor]:
        """PAMR's neighbour weights of the image at its ``ori_shape``."""
        if image is None or self.pamr is None:
            return None
        return self.pamr.affinity(self._to_original_size(
            image.float(), meta)[None])

    def full_labels(self, logits: Tensor, image: Optional[Tensor],
                    batch_img_metas: List[dict], index: int,
                    at_head_resolution: bool) -> Tuple[Tensor, Tensor]:
        """``[H, W]`` labels and ``[K, H, W]`` class probabilities of image
        ``index``, all names at once (the protocol as written)."""
        meta = batch_img_metas[index]
        scores = self.image_size_scores(logits, batch_img_metas, index,
                                        at_head_resolution,
                                        self.image_affinity(image, meta))
        probs = scores if self.scores_are_probabilities else torch.softmax(
            scores * self.logit_scale, dim=0)
        probs = self.class_scores(probs[None])[0]
        if self.area_thd > 0:
            dropped = self.small_classes(probs.argmax(dim=0), len(probs))
            probs[dropped] = 0
        top, labels = probs.max(dim=0)
        labels[top < self.prob_thd] = 0
        return labels, probs

    def small_classes(self, labels: Tensor, num_classes: int) -> List[int]:
        """Classes other than 0 whose area in ``labels`` is at most
        ``area_thd`` of all labels other than 0 (SCLIP's rule)."""
        area = torch.bincount(labels.flatten(), minlength=num_classes)
        area[0] = 0
        return [k for k in range(1, num_classes)
                if area[k] <= self.area_thd * area.sum()]

    def chunked_labels(self, logits: Tensor, batch_img_metas: List[dict],
                       index: int, at_head_resolution: bool,
                       image: Optional[Tensor] = None) -> Tensor:
        """The ``[H, W]`` labels of image ``index`` (see
        :meth:`running_labels`); with ``area_thd`` a second pass without
        the classes the first one found too small."""
        if self.area_thd <= 0:
            return self.running_labels(logits, batch_img_metas, index,
                                       at_head_resolution, image)
        first = self.running_labels(logits, batch_img_metas, index,
                                    at_head_resolution, image,
                                    threshold=False)
        num_classes = max(self.query_class) + 1
        return self.running_labels(logits, batch_img_metas, index,
                                   at_head_resolution, image,
                                   dropped=self.small_classes(first,
                                                              num_classes))

    def running_labels(self, logits: Tensor, batch_img_metas: List[dict],
                       index: int, at_head_resolution: bool,
                       image: Optional[Tensor] = None,
                       dropped: Sequence[int] = (),
                       threshold: bool = True) -> Tensor:
        """The ``[H, W]`` labels of image ``index`` at its ``ori_shape``
        from its ``[1, Q, h, w]`` scores, a chunk of names at a time
        (:meth:`merged_labels`); with PAMR, tile by tile
        (:meth:`tiled_pamr_labels`).

        ``at_head_resolution``: the scores are the head's output (first
        resized as mmseg's decode head does), else at the padded input's
        size. Names of ``dropped`` classes count in the softmax's sum but
        never win (their probability is 0, as SCLIP zeroes it).
        """
        if image is not None and self.pamr is not None:
            return self.tiled_pamr_labels(logits, batch_img_metas, index,
                                          at_head_resolution, image,
                                          dropped, threshold)
        meta = batch_img_metas[index]
        class_chunk, chunk_numel = self.chunk_sizes()
        ori_h, ori_w = meta['ori_shape'][:2]
        step = max(1, min(class_chunk, chunk_numel // max(ori_h * ori_w, 1)))
        chunks = (self.image_size_scores(logits[:, start:start + step],
                                         batch_img_metas, index,
                                         at_head_resolution, None)
                  for start in range(0, logits.shape[1], step))
        return self.merged_labels(chunks, dropped, threshold)

    def tiled_pamr_labels(self, logits: Tensor, batch_img_metas: List[dict],
                          index: int, at_head_resolution: bool,
                          image: Tensor, dropped: Sequence[int] = (),
                          threshold: bool = True) -> Tensor:
        """:meth:`running_labels` with PAMR, one tile of the image at its
        ``ori_shape`` at a time (``PAMR.tiles``: each with a halo as wide
        as PAMR reads, so the labels are the whole image's): the image and
        the scores are resized into the tile only (:func:`resized_crop`),
        refined and reduced to labels there. Memory: the names' scores at
        the model's input size, plus a tile's worth of scores a chunk of
        names at a time, plus the labels; not names x photo pixels."""
        meta = batch_img_metas[index]
        size = tuple(meta['ori_shape'][:2])
        if at_head_resolution:
            logits = self.resize_scores(logits, batch_img_metas)
        scores = self._unpadded(logits, meta)
        pixels = self._unpadded(image.float(), meta)
        class_chunk, chunk_numel = self.chunk_sizes()
        labels = torch.empty(size, dtype=torch.long, device=logits.device)
        tiles = list(self.pamr.tiles(size))
        report_every = (-(-len(tiles) // 10)
                        if len(tiles) >= PAMR_PROGRESS_MIN_TILES else 0)
        started = time.monotonic()
        for done, (rows, cols, inner_rows, inner_cols) in enumerate(tiles, 1):

            def crop(x: Tensor) -> Tensor:
                return resized_crop(x, size, rows, cols, self.align_corners)

            affinity = self.pamr.affinity(crop(pixels))
            tile = (rows.stop - rows.start) * (cols.stop - cols.start)
            step = max(1, min(class_chunk, chunk_numel // tile))
            chunks = (self.pamr.propagate(
                crop(scores[:, start:start + step]), affinity)[0]
                for start in range(0, scores.shape[1], step))
            labels[rows, cols][inner_rows, inner_cols] = self.merged_labels(
                chunks, dropped, threshold)[inner_rows, inner_cols]
            if report_every and (done % report_every == 0
                                 or done == len(tiles)):
                print_log(f'PAMR: {done}/{len(tiles)} tiles of the '
                          f'{size[1]}x{size[0]} image done '
                          f'({time.monotonic() - started:.0f} s)',
                          logger='current')
        return labels

    def merged_labels(self, chunks: Iterable[Tensor],
                      dropped: Sequence[int] = (),
                      threshold: bool = True) -> Tensor:
        """Labels from the names' scores ``[c, H, W]`` given a chunk of
        names at a time, in order: a running maximum, the class of the best
        name and, for ``prob_thd``, a running ``sum exp(logit_scale * (s -
        max))`` (the top probability is its inverse)."""
        query_class = self.query_class
        need_sum = threshold and self.prob_thd > 0 and \
            not self.scores_are_probabilities
        dropped = set(dropped)
        # best / labels: the running maximum over the names that may win;
        # ref / total: over all names, and sum exp(logit_scale * (s - ref))
        best = labels = ref = total = None
        start = 0
        for part in chunks:
            classes = query_class[start:start + part.shape[0]]
            start += part.shape[0]
            if need_sum:
                top = part.max(dim=0).values
                if ref is None:
                    ref, total = top, torch.zeros_like(top)
                else:  # the sum so far, relative to the new maximum
                    new_ref = torch.maximum(ref, top)
                    total.mul_(torch.exp(self.logit_scale * (ref - new_ref)))
                    ref = new_ref
                for k in range(part.shape[0]):
                    total.add_(torch.exp(self.logit_scale * (part[k] - ref)))
            keep = [k for k, c in enumerate(classes) if c not in dropped]
            if len(keep) < len(classes):
                part, classes = part[keep], [classes[k] for k in keep]
            if not classes:
                continue
            if best is None:
                best = part[0].clone()
                labels = torch.full(best.shape, classes[0], dtype=torch.long,
                                    device=best.device)
                part, classes = part[1:], classes[1:]
            _merge_running_max(best, labels, part, classes)
            del part
        if threshold and self.prob_thd > 0:
            if self.scores_are_probabilities:
                top = best
            else:
                top = torch.exp(self.logit_scale * (best - ref)) / total
            labels[top < self.prob_thd] = 0
        return labels

    def _to_original_size(self, logits: Tensor, meta: dict) -> Tensor:
        """mmseg's ``postprocess_result`` steps for one image's ``[1, c, H,
        W]`` logits: padding removed, flip undone, resized to ``ori_shape``;
        returns ``[c, h, w]``."""
        return resize(self._unpadded(logits, meta), size=meta['ori_shape'],
                      mode='bilinear', align_corners=self.align_corners,
                      warning=False).squeeze(0)

    @staticmethod
    def _unpadded(logits: Tensor, meta: dict) -> Tensor:
        """``[1, c, H, W]`` logits with the padding removed and the flip
        undone (:meth:`_to_original_size` before its resize)."""
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
        return logits


def _check_positive_int(model, key: str, value, optional: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f'{type(model).__name__}: model.test_cfg.{key} must be a '
            f'positive integer{" or None" if optional else ""}, got '
            f'{value!r}')


def _merge_running_max(best: Tensor, labels: Tensor, part: Tensor,
                       classes: List[int]) -> None:
    """Update the running maximum ``best`` ``[H, W]`` and its ``labels`` in
    place with ``part`` ``[c, H, W]`` (names of ``classes``), one at a time;
    a tie keeps the earlier name, as ``argmax``."""
    for k in range(part.shape[0]):
        better = part[k] > best
        labels.masked_fill_(better, classes[k])
        torch.maximum(best, part[k], out=best)
