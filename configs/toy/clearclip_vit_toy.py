# ClearCLIP (ECCV 2024) on the toy ViT CLIP: configs/toy/maskclip_vit_toy.py
# with ClearCLIP's last block, out_proj(softmax(q q^T s) v) without the
# residual and the FFN, positions resized bicubically and a logit scale of
# 50, as its code does.
#   python tools/toy_demo.py --config configs/toy/clearclip_vit_toy.py
_base_ = ['./maskclip_vit_toy.py']
model = dict(
    logit_scale=50.0,
    backbone=dict(dense_last_block=dict(mode='clearclip'),
                  pos_interpolation='bicubic'))
