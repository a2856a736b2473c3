"""Random inputs of the benchmark: image metas, and samples with random labels."""
from typing import List

import torch


def image_metas(h: int, w: int, n: int) -> List[dict]:
    """Metas of ``n`` unpadded ``h x w`` images (no test-time resize)."""
    return [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                 padding_size=[0, 0, 0, 0]) for _ in range(n)]


def random_label_samples(h: int, w: int, n: int, num_classes: int,
                         device: torch.device) -> list:
    """``n`` ``SegDataSample`` with random labels in ``[0, num_classes)``."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for meta in image_metas(h, w, n):
        s = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, num_classes, (1, h, w), device=device)))
        s.set_metainfo(meta)
        out.append(s)
    return out
