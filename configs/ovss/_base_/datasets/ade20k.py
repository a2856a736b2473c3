# ADE20K val: 2000 images, 150 classes (label 0 "other" ignored:
# reduce_zero_label).
_base_ = ['../../../maskclip/_base_/datasets/ade20k.py']
# The protocol's resize: short side `short_side` (long side at most 2048),
# labels loaded after it (metrics at the original size). A method config
# that needs another short side sets `short_side` and repeats these lines
# (a base's pipeline is fixed when the base is read): docs/ovss.md.
short_side = 336
class_names_file = 'configs/ovss/class_names/ade20k.txt'
num_classes = 150
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, short_side), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
