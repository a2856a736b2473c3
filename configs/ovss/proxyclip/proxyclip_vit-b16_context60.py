# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on Context60 as its repository runs it
# (mc-lan/ProxyCLIP configs/cfg_context60.py): short side 336, slide 336 /
# 112, logit scale 40, background below probability 0.15, PAMR off, class names
# context60.txt. Published: 35.3 mIoU (paper, Table 1; not checked here).
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_context60.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/context60.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    prob_thd=0.15)
