# SC-CLIP (ViT-B/16) on VOC21 as its repository runs it (SuleBai/SC-CLIP
# configs/cfg_voc21.py): short side 336, slide 224 / 112, logit scale 50,
# background below probability 0.15, classes covering at most 10% of the non-
# background prediction dropped (area_thd), PAMR off, class names voc21.txt.
# Published: 64.6 mIoU (paper, Table 1).
#   python tools/test.py configs/ovss/scclip/scclip_vit-b16_voc21.py
_base_ = ['./_base_/scclip_vit-b16.py', '../_base_/datasets/voc21.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    logit_scale=50.0,
    prob_thd=0.15,
    area_thd=0.1)
