# DenseCLIP, CLIP ViT-B/16 + FPN, ADE20K 640x640, 80k iterations (8 GPUs x 4).
# The paper: 50.6 mIoU single-scale, 51.3 multi-scale (tools/test.py --tta).
# Reference: segmentation/configs/denseclip_fpn_vit-b_640x640_80k.py.
# Trains from OpenAI's ViT-B-16.pt with CLIP's class token (the class
# embedding added once). To test the reference's released ViT-B checkpoint,
# which was trained with the class embedding added twice, use
# denseclip_fpn_vit-b_ade_640_released.py.
_base_ = [
    '_base_/models/denseclip_vit-b.py', '_base_/datasets/ade20k_clip_640.py',
    '_base_/default_runtime.py', '_base_/schedules/schedule_80k_denseclip.py'
]
