# MaskCLIP (ViT-L/14) on COCO-Stuff under this project's default protocol: the
# settings of maskclip_vit-b16_coco_stuff164k.py on CLIP ViT-L/14
# (pretrained/ViT-L-14.pt, configs/ovss/_base_/models/clip_vit-l14.py). No
# paper publishes MaskCLIP settings for ViT-L/14 (nor for ViT-B/16 on these
# benchmarks): this project's default protocol, as on ViT-B/16. Published
# ViT-L/14 mIoU: none found (docs/ovss.md, "ViT-L/14").
#   python tools/test.py configs/ovss/maskclip/maskclip_vit-l14_coco_stuff164k.py
_base_ = ['./maskclip_vit-b16_coco_stuff164k.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
