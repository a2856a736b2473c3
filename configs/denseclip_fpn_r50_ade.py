# DenseCLIP, CLIP RN50 + FPN, ADE20K 512x512, 80k iterations (8 GPUs x 4).
# The paper: 43.5 mIoU single-scale, 44.7 multi-scale (tools/test.py --tta).
# Reference: segmentation/configs/denseclip_fpn_res50_512x512_80k.py.
_base_ = [
    '_base_/models/denseclip_r50.py', '_base_/datasets/ade20k_clip.py',
    '_base_/default_runtime.py', '_base_/schedules/schedule_80k_denseclip.py'
]
