# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on ADE20K under this project's default
# protocol (docs/ovss.md): short side 336, slide 224 / 112, logit scale 40,
# no background threshold, PAMR off, class names ade20k.txt. Its
# published settings: proxyclip_vit-b16_ade20k.py.
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_ade20k_default.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/ade20k.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
