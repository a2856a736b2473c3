"""Test-time augmentation (flips, scales) of a training-free segmentor:
the protocol's probabilities of every view averaged, then its labels."""
from typing import List, Optional

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from .training_free_segmentor import TrainingFreeSegmentor


@MODELS.register_module()
class TrainingFreeTTAModel(SegTTAModel):
    """``tools/test.py --tta`` for a :class:`TrainingFreeSegmentor`.

    Each view (a ``TestTimeAug`` resize and flip) runs the segmentor's own
    inference (its whole image or slide windows, at the view's size); its
    scores are brought back to the image (padding removed, flip undone,
    resized to ``ori_shape``), refined by PAMR where the model has it, and
    turned into the protocol's class probabilities (``softmax(logit_scale *
    scores)`` over all names, the maximum over a class's synonyms). The mean
    over the views gives the labels, with the model's ``area_thd`` and
    ``prob_thd``. mmseg's ``SegTTAModel`` would instead average
    ``softmax(seg_logits)``, which this segmentor keeps at its own
    resolution, unflipped and without its logit scale.
    """

    def __init__(self, module, data_preprocessor=None):
        super().__init__(module, data_preprocessor)
        if not isinstance(self.module, TrainingFreeSegmentor):
            raise TypeError(
                f'TrainingFreeTTAModel needs a TrainingFreeSegmentor, got '
                f"{type(self.module).__name__}: use tta_model=dict(type="
                f"'SegTTAModel')")

    def test_step(self, data: dict) -> List[SegDataSample]:
        """Labels of a batch of ``TestTimeAug`` views (``data``: a dict of
        per-view lists, as ``pseudo_collate`` gives it)."""
        if not isinstance(data, dict):
            raise TypeError(f'TrainingFreeTTAModel: a batch is a dict of '
                            f'per-view lists, got {type(data).__name__}')
        num_views = len(data[next(iter(data))])
        sums: List[Optional[Tensor]] = []
        first: List[SegDataSample] = []
        with torch.no_grad():
            for v in range(num_views):
                view = self.module.data_preprocessor(
                    {key: value[v] for key, value in data.items()}, False)
                samples = view['data_samples']
                probs = self.view_probabilities(view['inputs'], samples)
                if v == 0:
                    sums, first = probs, samples
                else:
                    for i, p in enumerate(probs):
                        sums[i] += p
        return [self.labelled(sample, total / num_views)
                for sample, total in zip(first, sums)]

    def view_probabilities(self, inputs: Tensor,
                           samples: List[SegDataSample]) -> List[Tensor]:
        """The ``[K, H, W]`` class probabilities of each image of one view,
        at its ``ori_shape``, flip undone."""
        model = self.module
        metas = [sample.metainfo for sample in samples]
        scores = model.inference(inputs, metas)
        # chunked whole inference keeps the head's resolution
        at_head_resolution = model.chunked and \
            model.test_cfg.get('mode', 'whole') == 'whole'
        found = []
        for i, meta in enumerate(metas):
            image = inputs[i:i + 1] if model.pamr is not None else None
            part = model.image_size_scores(
                scores[i:i + 1], metas, i, at_head_resolution,
                model.image_affinity(image, meta))
            if not model.scores_are_probabilities:
                part = torch.softmax(part * model.logit_scale, dim=0)
            found.append(model.class_scores(part[None])[0])
        return found

    def labelled(self, sample: SegDataSample,
                 probs: Tensor) -> SegDataSample:
        """``sample`` with the labels of the mean probabilities ``probs``
        (``area_thd``, ``prob_thd`` as the model applies them) and the
        probabilities as ``seg_logits``."""
        model = self.module
        if model.area_thd > 0:
            probs[model.small_classes(probs.argmax(dim=0), len(probs))] = 0
        top, labels = probs.max(dim=0)
        labels[top < model.prob_thd] = 0
        sample.set_data({'seg_logits': PixelData(data=probs),
                         'pred_sem_seg': PixelData(data=labels[None])})
        return sample
