# COCO-Stuff 164k, 171 classes, annotation-free: every class pixel is
# pseudo-labelled (MarkUnlabeled). Validation as MaskCLIP's (the base).
_base_ = ['../../../maskclip/_base_/datasets/coco-stuff164k.py']
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='MarkUnlabeled', classes=list(range(171))),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}}, data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train2017',
                         seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
