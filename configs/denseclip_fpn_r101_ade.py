# DenseCLIP, CLIP RN101 + FPN, ADE20K 512x512, 80k iterations (8 GPUs x 4).
# The paper: 45.1 mIoU single-scale, 46.5 multi-scale (tools/test.py --tta).
# Reference: segmentation/configs/denseclip_fpn_res101_512x512_80k.py.
_base_ = [
    '_base_/models/denseclip_r50.py', '_base_/datasets/ade20k_clip.py',
    '_base_/default_runtime.py', '_base_/schedules/schedule_80k_denseclip.py'
]
model = dict(
    pretrained='pretrained/RN101.pt',
    text_dim=512,
    backbone=dict(layers=[3, 4, 23, 3], output_dim=512),
    text_encoder=dict(embed_dim=512),
    context_decoder=dict(visual_dim=512))
