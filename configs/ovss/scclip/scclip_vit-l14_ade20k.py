# SC-CLIP (ViT-L/14) on ade20k under its published settings: the settings
# of scclip_vit-b16_ade20k.py on CLIP ViT-L/14 (pretrained/ViT-L-14.pt,
# configs/ovss/_base_/models/clip_vit-l14.py). SC-CLIP's layers for a
# 24-block ViT come from the file's depth (SCCLIP_LAYERS); the thresholds
# stay ViT-B/16's (its L/14 ones were in a comment its history removed:
# docs/ovss.md, "SC-CLIP"). Published ViT-L/14 mIoU: not carried here.
#   python tools/test.py configs/ovss/scclip/scclip_vit-l14_ade20k.py
_base_ = ['./scclip_vit-b16_ade20k.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
