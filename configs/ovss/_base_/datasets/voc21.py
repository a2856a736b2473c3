# VOC21: Pascal VOC 2012 val with background (1449 images, 21 classes,
# background counted in mIoU). The MaskCLIP VOC20 base's data without its
# class subset (metainfo=None: mmseg's 21 classes, labels as stored).
_base_ = ['../../../maskclip/_base_/datasets/pascal_voc12_20.py']
# The protocol's resize: short side `short_side` (long side at most 2048),
# labels loaded after it (metrics at the original size). A method config
# that needs another short side sets `short_side` and repeats these lines
# (a base's pipeline is fixed when the base is read): docs/ovss.md.
short_side = 336
class_names_file = 'configs/ovss/class_names/voc21.txt'
num_classes = 21
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
val_dataloader = dict(dataset=dict(metainfo=None, pipeline=test_pipeline))
test_dataloader = val_dataloader
