# For testing (or fine-tuning) the reference's released DenseCLIP ViT-B/16
# ADE20K checkpoint: the reference's ViT adds the class embedding twice
# (class token = 2 * class_embedding + positional_embedding[0]) and the
# released weights were trained that way; CLIP's own ViT adds it once.
#   python tools/test.py configs/denseclip_fpn_vit-b_ade_640_released.py \
#       pretrained/denseclip_fpn_vit-b.pth [--tta]
_base_ = ['./denseclip_fpn_vit-b_ade_640.py']
model = dict(backbone=dict(add_class_embedding_twice=True))
