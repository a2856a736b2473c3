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
_base_ = ['../../_base_/models/training_free_vit-b16.py']
model = dict(
    backbone=dict(
        dense_last_block=dict(mode='clearclip', residual=False, ffn=False)),
    logit_scale=50.0,
    test_cfg=dict(crop_size=(448, 448), stride=(224, 224)),
    pamr=None)
