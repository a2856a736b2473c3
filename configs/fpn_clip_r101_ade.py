# Baseline: CLIP RN101 + FPN (no text), ADE20K 512x512, 80k iterations.
# The paper: 42.7 mIoU single-scale.
# Reference: segmentation/configs/fpn_clipres101_512x512_80k.py (which names
# pretrained/RN50.pt, a slip: RN101's layers need RN101.pt).
_base_ = [
    '_base_/models/fpn_clip_r50.py', '_base_/datasets/ade20k_clip.py',
    '_base_/default_runtime.py', '_base_/schedules/schedule_80k_denseclip.py'
]
model = dict(
    pretrained='pretrained/RN101.pt',
    backbone=dict(layers=[3, 4, 23, 3], output_dim=512))
