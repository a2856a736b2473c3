# ProxyCLIP on the toy ViT CLIP: configs/toy/maskclip_vit_toy.py with
# ProxyCLIP's last block (the attention of a vision foundation model's patch
# affinities, beta 1.2, gamma 3; no residual, no FFN), positions resized
# bicubically as its code does, and the toy VFM as its vision foundation
# model: a DINO-layout ViT (patch 8, width 64, 3 blocks) trained without
# labels on the toy training images of data seed 0 (docs/toy_vfm.md;
# tools/toy_vfm.py or tools/toy_method_table.py trains it once, cached in
# work_dirs/toy/vfm/). Nothing here was tuned on the toy's numbers: beta and
# gamma are the paper's.
#   python tools/toy_method_table.py --methods MaskCLIP ProxyCLIP
_base_ = ['./maskclip_vit_toy.py']
toy_vfm_file = 'work_dirs/toy/vfm/toy_vfm.pth'
model = dict(
    backbone=dict(dense_last_block=dict(mode='proxyclip'),
                  pos_interpolation='bicubic'),
    vfm=dict(type='VisionFoundationModel', pretrained=toy_vfm_file))
