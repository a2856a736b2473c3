# SCLIP (ECCV 2024) on the toy ViT CLIP: configs/toy/maskclip_vit_toy.py with
# SCLIP's last block, correlative self-attention out_proj((softmax(q q^T s) +
# softmax(k k^T s)) v) with the residual and the FFN kept, and positions
# resized bicubically, as its code does.
#   python tools/toy_demo.py --config configs/toy/sclip_vit_toy.py
_base_ = ['./maskclip_vit_toy.py']
model = dict(
    backbone=dict(dense_last_block=dict(mode='sclip'),
                  pos_interpolation='bicubic'))
