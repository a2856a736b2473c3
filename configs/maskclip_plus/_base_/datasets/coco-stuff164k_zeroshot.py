# COCO-Stuff 164k, 171 classes, transductive zero-shot: the ground truth of
# the unseen classes (frisbee, skateboard, cardboard, carrot, scissors,
# suitcase, giraffe, cow, road, wall-concrete, tree, grass, river, clouds,
# playingfield) is hidden (MarkUnlabeled) and replaced by pseudo labels.
# Otherwise as the annotation-free base.
_base_ = ['./coco-stuff164k_annofree.py']
unseen_classes = [19, 23, 28, 29, 36, 51, 76, 88, 94, 112, 133, 136, 137,
                  157, 160]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='MarkUnlabeled', classes=unseen_classes),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}},
         cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(type='ZeroShotIoUMetric', unseen_classes=unseen_classes,
                     iou_metrics=['mIoU'])
test_evaluator = val_evaluator
