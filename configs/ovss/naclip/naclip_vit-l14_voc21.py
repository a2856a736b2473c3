# NACLIP (ViT-L/14) on VOC21 under its published settings: the settings of
# naclip_vit-b16_voc21.py on CLIP ViT-L/14 (pretrained/ViT-L-14.pt,
# configs/ovss/_base_/models/clip_vit-l14.py). NACLIP's repository
# (sinahmr/NACLIP) runs another CLIP by eval.py --backbone (naclip.py
# clip_path) alone: the same windows, short side, Gaussian (std 5 patches),
# PAMR and thresholds as ViT-B/16. Published ViT-L/14 mIoU: none found
# (docs/ovss.md, "ViT-L/14").
#   python tools/test.py configs/ovss/naclip/naclip_vit-l14_voc21.py
_base_ = ['./naclip_vit-b16_voc21.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
