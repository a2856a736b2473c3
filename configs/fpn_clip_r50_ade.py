# Baseline: CLIP RN50 + FPN (no text), ADE20K 512x512, 80k iterations.
# The paper: 39.6 mIoU single-scale.
# Reference: segmentation/configs/fpn_clipres50_512x512_80k.py.
_base_ = [
    '_base_/models/fpn_clip_r50.py', '_base_/datasets/ade20k_clip.py',
    '_base_/default_runtime.py', '_base_/schedules/schedule_80k_denseclip.py'
]
