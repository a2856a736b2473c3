# SCLIP (ViT-B/16) on VOC21 as its repository runs it (wangf3014/SCLIP
# configs/cfg_voc21.py): short side 336, slide 224 / 112, logit scale 65,
# background below probability 0.1, classes covering at most 10% of the
# non-background prediction dropped (area_thd), PAMR off, class names
# voc21.txt. Published: 59.1 mIoU (paper).
#   python tools/test.py configs/ovss/sclip/sclip_vit-b16_voc21.py
_base_ = ['./_base_/sclip_vit-b16.py', '../_base_/datasets/voc21.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    logit_scale=65.0,
    prob_thd=0.1,
    area_thd=0.1)
