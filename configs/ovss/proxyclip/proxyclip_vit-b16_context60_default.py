# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on Context60 under this project's default
# protocol (docs/ovss.md): short side 336, slide 224 / 112, logit scale 40,
# background below probability 0.1, PAMR off, class names context60.txt. Its
# published settings: proxyclip_vit-b16_context60.py.
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_context60_default.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/context60.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    prob_thd=0.1,
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112)))
