# Baseline: CLIP ViT-B/16 + FPN (no text), ADE20K 640x640, 80k iterations.
# The paper: 49.4 mIoU single-scale.
# Reference: segmentation/configs/fpn_clipvit-b_640x640_80k.py.
_base_ = [
    '_base_/models/fpn_clip_vit-b.py', '_base_/datasets/ade20k_clip_640.py',
    '_base_/default_runtime.py', '_base_/schedules/schedule_80k_denseclip.py'
]
