# ade20k_clip.py at 640x640 crops (the ViT-B/16 configs; reference DenseCLIP:
# segmentation/configs/_base_/datasets/ade20k_clip_640.py). Only the sizes
# differ; the pipelines are rebuilt from them (a child config cannot
# re-evaluate its base's lists).
_base_ = ['./ade20k_clip.py']
crop_size = (640, 640)
# the reference keeps the long side at 2048 (mmseg's ade20k_640x640 uses
# 2560); it only matters for images wider than 3.2:1
img_scale = (2048, 640)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize',
                  scale=(int(img_scale[0] * r), int(img_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
