# NACLIP (Hajimiri et al., WACV 2025) on CLIP ViT-B/16
# (pretrained/ViT-B-16.pt): the last block is
# out_proj(softmax(k k^T s + Omega) v) without the residual connection and
# the FFN, Omega a Gaussian of std 5 patches over the patch grid; then
# ln_post and proj. The settings its repository ships (sinahmr/NACLIP,
# naclip.py defaults): the 80 ImageNet templates, synonym class files, slide
# windows 224 / 112, positions resized bicubically, PAMR on (10 iterations,
# dilations 8 and 16, on the names' scores before the softmax),
# softmax(40 * cos) over all names and the max over a class's synonyms, no
# background threshold. A benchmark file adds its data and the values its
# configs/cfg_<benchmark>.py changes. Its paper's main table is without
# PAMR: tools/ovss_benchmark.py naclip --no-pamr, or model.pamr=None.
_base_ = ['../../_base_/models/training_free_vit-b16.py']
model = dict(
    backbone=dict(
        dense_last_block=dict(
            mode='naclip', residual=False, ffn=False, gaussian_std=5.0)),
    pamr=dict(type='PAMR', num_iter=10, dilations=(8, 16)))
