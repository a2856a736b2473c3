# SCLIP (Wang et al., ECCV 2024) on CLIP ViT-B/16 (pretrained/ViT-B-16.pt):
# the last block's attention is correlative self-attention,
# x + out_proj((softmax(q q^T s) + softmax(k k^T s)) v), FFN kept; then
# ln_post and proj. The settings its repository ships (wangf3014/SCLIP,
# clip_segmentor.py defaults): the 80 ImageNet templates, synonym class
# files, slide windows 224 / 112, positions resized bicubically,
# softmax(40 * cos) over all names and the max over a class's synonyms, no
# background threshold, no PAMR (pamr_steps=0). A benchmark file adds its
# data and the values its configs/cfg_<benchmark>.py changes.
_base_ = [
    '../../../maskclip/_base_/models/maskclip_vit16.py',
    '../../../_base_/default_runtime.py',
    '../../../maskclip/_base_/maskclip_test_runtime.py',
]
model = dict(
    type='TrainingFreeSegmentor',
    backbone=dict(
        return_value_path=False,
        dense_last_block=dict(mode='sclip', residual=True, ffn=True),
        pos_interpolation='bicubic'),
    decode_head=dict(templates='imagenet80'),
    logit_scale=40.0,
    prob_thd=0.0,
    pamr=None,
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
