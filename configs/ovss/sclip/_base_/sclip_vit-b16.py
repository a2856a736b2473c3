# SCLIP (Wang et al., ECCV 2024) on CLIP ViT-B/16 (pretrained/ViT-B-16.pt):
# the last block's attention is correlative self-attention,
# x + out_proj((softmax(q q^T s) + softmax(k k^T s)) v), FFN kept; then
# ln_post and proj. The settings its repository ships (wangf3014/SCLIP,
# clip_segmentor.py defaults): the 80 ImageNet templates, synonym class
# files, slide windows 224 / 112, positions resized bicubically,
# softmax(40 * cos) over all names and the max over a class's synonyms, no
# background threshold, no PAMR (pamr_steps=0). A benchmark file adds its
# data and the values its configs/cfg_<benchmark>.py changes.
_base_ = ['../../_base_/models/training_free_vit-b16.py']
model = dict(
    backbone=dict(
        dense_last_block=dict(mode='sclip', residual=True, ffn=True)),
    pamr=None)
