# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on ADE20K as its repository runs it
# (mc-lan/ProxyCLIP configs/cfg_ade20k.py): short side 448, slide 336 /
# 112, logit scale 40, no background threshold, PAMR off, class names
# ade20k.txt. Published: 20.2 mIoU (paper, Table 1; not checked here).
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_ade20k.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/ade20k.py']
short_side = 448
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, short_side), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# Multi-scale + flip testing (tools/test.py --tta): the scales of mmseg's
# multi-scale test (img_ratios 0.5 to 1.75) of this resize, each
# view also flipped; the model runs its own inference (whole image or slide
# windows) on every view.
tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(2048 * r), int(short_side * r)),
                  keep_ratio=True) for r in tta_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
