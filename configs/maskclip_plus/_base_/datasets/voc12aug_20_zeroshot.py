# Pascal VOC 2012 + SBD (aug), 20 classes without background (background
# ignored), transductive zero-shot: the ground truth of the unseen classes
# (potted plant, sheep, sofa, train, tv monitor; labels 15-19) is hidden
# (MarkUnlabeled) and replaced by pseudo labels; seen classes keep theirs.
# As the reference's zero_shot/..._voc12aug_20.py, whose model it released.
_base_ = ['./voc12aug_20_annofree.py']
dataset_type = {{_base_.dataset_type}}
data_root = {{_base_.data_root}}
voc20_classes = {{_base_.voc20_classes}}
unseen_classes = [15, 16, 17, 18, 19]
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='MarkUnlabeled', classes=unseen_classes),
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
train_dataloader = dict(dataset=dict(datasets=[voc_train, voc_aug]))
val_evaluator = dict(type='ZeroShotIoUMetric', unseen_classes=unseen_classes,
                     iou_metrics=['mIoU'])
test_evaluator = val_evaluator
