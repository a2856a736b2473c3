# NACLIP (WACV 2025) on the toy ViT CLIP: configs/toy/maskclip_vit_toy.py with
# NACLIP's last block, out_proj(softmax(k k^T s + Omega) v) with a Gaussian
# neighbourhood Omega of std 5 patches, without the residual and the FFN, and
# positions resized bicubically, as its code does.
#   python tools/toy_demo.py --config configs/toy/naclip_vit_toy.py
_base_ = ['./maskclip_vit_toy.py']
model = dict(
    backbone=dict(dense_last_block=dict(mode='naclip', gaussian_std=5.0),
                  pos_interpolation='bicubic'))
