# Pascal VOC 2012 + SBD (aug), 20 classes without background (background
# ignored), annotation-free: every class pixel is pseudo-labelled
# (MarkUnlabeled), the ground truth only tells background (ignored) apart.
# Validation as MaskCLIP's (the base).
_base_ = ['../../../maskclip/_base_/datasets/pascal_voc12_20.py']
dataset_type = {{_base_.dataset_type}}
data_root = {{_base_.data_root}}
voc20_classes = {{_base_.voc20_classes}}
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='MarkUnlabeled', classes=list(range(20))),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
voc_train = dict(
    type=dataset_type, data_root=data_root,
    metainfo=dict(classes=voc20_classes),
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline)
voc_aug = dict(
    type=dataset_type, data_root=data_root,
    metainfo=dict(classes=voc20_classes),
    data_prefix=dict(img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'),
    ann_file='ImageSets/Segmentation/aug.txt', pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ConcatDataset', datasets=[voc_train, voc_aug]))
