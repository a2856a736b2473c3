# COCO-Stuff 164k val2017: 171 classes (80 things + 91 stuff), 255
# ignored (labels from mmseg's coco_stuff164k.py converter).
_base_ = ['../../../maskclip/_base_/datasets/coco-stuff164k.py']
# The protocol's resize: short side `short_side` (long side at most 2048),
# labels loaded after it (metrics at the original size). A method config
# that needs another short side sets `short_side` and repeats these lines
# (a base's pipeline is fixed when the base is read): docs/ovss.md.
short_side = 336
class_names_file = 'configs/ovss/class_names/coco_stuff164k.txt'
num_classes = 171
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, short_side), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
