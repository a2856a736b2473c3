# ClearCLIP (ECCV 2024) on the toy ViT CLIP: configs/toy/maskclip_vit_toy.py
# with ClearCLIP's last block, out_proj(softmax(q q^T s) v) without the
# residual and the FFN, and positions resized bicubically, as its code does.
#   python tools/toy_demo.py --config configs/toy/clearclip_vit_toy.py
_base_ = ['./maskclip_vit_toy.py']
model = dict(
    backbone=dict(dense_last_block=dict(mode='clearclip'),
                  pos_interpolation='bicubic'))
