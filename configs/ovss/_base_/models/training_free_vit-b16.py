# What the four training-free methods share on CLIP ViT-B/16
# (pretrained/ViT-B-16.pt): TrainingFreeSegmentor, positions resized
# bicubically, the 80 ImageNet templates, softmax(40 * cos) over all names,
# no background threshold, slide windows 224 / 112. A method's base adds its
# last block (backbone.dense_last_block), its PAMR setting and what it changes.
_base_ = [
    '../../../maskclip/_base_/models/maskclip_vit16.py',
    '../../../_base_/default_runtime.py',
    '../../../maskclip/_base_/maskclip_test_runtime.py',
]
model = dict(
    type='TrainingFreeSegmentor',
    backbone=dict(return_value_path=False, pos_interpolation='bicubic'),
    decode_head=dict(templates='imagenet80'),
    logit_scale=40.0,
    prob_thd=0.0,
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
# tools/test.py --tta: the views' protocol probabilities averaged
# (TrainingFreeTTAModel; the views: the dataset base's tta_pipeline)
tta_model = dict(type='TrainingFreeTTAModel')
