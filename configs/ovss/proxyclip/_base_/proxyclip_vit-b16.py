# ProxyCLIP (Lan et al., ECCV 2024) on CLIP ViT-B/16 (pretrained/ViT-B-16.pt)
# with DINO ViT-B/8 as the vision foundation model (model.vfm, the name
# dino_vitb8: python tools/download_vfm.py dino_vitb8). The last block's
# attention is the proxy attention (dense_last_block mode 'proxyclip'):
# softmax of gamma * (S - beta * mean S), pairs below masked, over DINO's
# normalised patch features' cosine similarities S, applied to CLIP's
# values resized to DINO's 8 px grid; no residual, no FFN; then ln_post and
# proj. The settings its repository ships (mc-lan/ProxyCLIP
# proxyclip_segmentor.py defaults and configs/base_config.py): beta 1.2,
# gamma 3, the 80 ImageNet templates, slide windows 336 / 112, positions
# resized bicubically, softmax(40 * cos) over all names and the max over a
# class's synonyms, no background threshold, no PAMR. A benchmark file adds
# its data and the values its configs/cfg_<benchmark>.py changes.
_base_ = ['../../_base_/models/training_free_vit-b16.py']
vfm_file = 'dino_vitb8'
model = dict(
    backbone=dict(dense_last_block=dict(mode='proxyclip')),
    vfm=dict(type='VisionFoundationModel', pretrained=vfm_file),
    pamr=None,
    test_cfg=dict(mode='slide', crop_size=(336, 336), stride=(112, 112)))
