# ClearCLIP (ViT-B/16) on VOC20 under this project's default protocol
# (docs/ovss.md): short side 336, slide 224 / 112, logit scale 40, no
# background threshold, PAMR off, class names voc20.txt. Its published
# settings: clearclip_vit-b16_voc20.py.
#   python tools/test.py configs/ovss/clearclip/clearclip_vit-b16_voc20_default.py
_base_ = ['./_base_/clearclip_vit-b16.py', '../_base_/datasets/voc20.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    logit_scale=40.0,
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
