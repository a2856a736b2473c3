# ClearCLIP (Lan et al., ECCV 2024) on CLIP ViT-B/16 (pretrained/ViT-B-16.pt):
# the last block is out_proj(softmax(q q^T s) v) alone, without the residual
# connection and the FFN; then ln_post and proj. The settings its repository
# ships (mc-lan/ClearCLIP, clearclip_segmentor.py defaults): the 80 ImageNet
# templates, slide windows 448 / 224 on images of short side 448,
# positions resized bicubically, softmax(50 * cos) over all names and the
# max over a class's names, no background threshold, no PAMR. A benchmark
# file adds its data, its class names (ClearCLIP's one-name files where they
# differ: *_plain.txt) and the values its configs/cfg_<benchmark>.py
# changes. (Its base_config.py ships model_type='vanilla'; the paper's
# ClearCLIP is the q-q attention above: docs/ovss.md.)
_base_ = [
    '../../../maskclip/_base_/models/maskclip_vit16.py',
    '../../../_base_/default_runtime.py',
    '../../../maskclip/_base_/maskclip_test_runtime.py',
]
model = dict(
    type='TrainingFreeSegmentor',
    backbone=dict(
        return_value_path=False,
        dense_last_block=dict(mode='clearclip', residual=False, ffn=False),
        pos_interpolation='bicubic'),
    decode_head=dict(templates='imagenet80'),
    logit_scale=50.0,
    prob_thd=0.0,
    pamr=None,
    test_cfg=dict(mode='slide', crop_size=(448, 448), stride=(224, 224)))
