"""A toy validation split in ADE20K's layout whose images have several sizes
(what batched testing must cope with), and a recorder of the predictions
the evaluator receives (no fixtures here)."""
import os
import os.path as osp
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch

from denseclip.toy.data import make_toy_sample

# (h, w) of the images, in file order. After the toy configs' keep-ratio
# resize (short side 128 for the DenseCLIP toy) they stay three distinct
# sizes A, B, C in the order A B A A C B A: in batches of 3 that is
# [A B A] (a group of two and one of one), [A C B] (three of one) and [A]
# (the last, smaller batch)
MIXED_SIZES: Tuple[Tuple[int, int], ...] = (
    (120, 150), (150, 120), (120, 150), (120, 150), (96, 96), (150, 120),
    (120, 150))


def write_mixed_size_ade(root: str,
                         sizes: Sequence[Tuple[int, int]] = MIXED_SIZES,
                         seed: int = 0) -> List[str]:
    """``root/images/validation/ADE_val_0000000k.jpg`` and
    ``root/annotations/validation/*.png`` (class ``k`` of
    ``denseclip.toy.data.TOY_CLASSES`` written as ``k + 1``, as ADE20K
    with ``reduce_zero_label``), one toy scene per size; the image names."""
    rng = np.random.default_rng(seed)
    names = []
    for i, size in enumerate(sizes):
        img, label = make_toy_sample(rng, size)
        name = f'ADE_val_{i + 1:08d}'
        for kind, ext, data, params in (
                ('images', '.jpg', img[..., ::-1],
                 [cv2.IMWRITE_JPEG_QUALITY, 95]),
                ('annotations', '.png', label + 1, [])):
            folder = osp.join(root, kind, 'validation')
            os.makedirs(folder, exist_ok=True)
            assert cv2.imwrite(osp.join(folder, name + ext), data, params)
        names.append(name)
    return names


class Recorder:
    """The samples the evaluator receives, in order: file name, labels,
    logits."""

    def __init__(self, monkeypatch):
        from mmseg.evaluation import IoUMetric
        self.samples = []
        original = IoUMetric.process

        def process(metric, data_batch, data_samples):
            for s in data_samples:
                self.samples.append((osp.basename(s['img_path']),
                                     s['pred_sem_seg']['data'].clone(),
                                     s['seg_logits']['data'].clone()))
            return original(metric, data_batch, data_samples)

        monkeypatch.setattr(IoUMetric, 'process', process)

    def take(self):
        out, self.samples = self.samples, []
        return out


def assert_same_predictions(one, many, atol=1e-5):
    """Two :class:`Recorder` takes: the same files in the same order, equal
    labels, logits within ``atol`` (a batched convolution may round
    differently: up to 2e-6 seen), and labels that are not all one class."""
    assert [name for name, *_ in one] == [name for name, *_ in many]
    for (name, labels, logits), (_, labels_b, logits_b) in zip(one, many):
        assert torch.equal(labels, labels_b), name
        torch.testing.assert_close(logits, logits_b, atol=atol, rtol=1e-5)
    labels = torch.cat([labels.flatten() for _, labels, _ in one])
    assert len(labels.unique()) > 1, 'constant predictions prove little'
