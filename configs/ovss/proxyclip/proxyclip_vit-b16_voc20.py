# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on VOC20 as its repository runs it
# (mc-lan/ProxyCLIP configs/cfg_voc20.py): short side 336, slide 336 /
# 112, logit scale 40, no background threshold, PAMR off, class names
# voc20_plain.txt. Published: 80.3 mIoU (paper, Table 1; not checked here).
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_voc20.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/voc20.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names='configs/ovss/class_names/voc20_plain.txt'))
