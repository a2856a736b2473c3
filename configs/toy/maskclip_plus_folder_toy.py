# MaskCLIP+ on a folder of toy images without annotation files: the toy run
# of maskclip_plus_toy.py (its student, teacher recipe, crops, schedule and
# self-training) with the training images read from a plain folder
# (ImageFolderDataset + UnlabeledSegMap) instead of a dataset with class
# maps hidden by MarkUnlabeled. A template for tools/maskclip_plus_folder.py,
# which fills in the folder, the class names and the teacher (MaskCLIP on
# --clip, here the trained RN toy CLIP):
#   python tools/maskclip_plus_folder.py FOLDER --config \
#       configs/toy/maskclip_plus_folder_toy.py --clip \
#       work_dirs/toy/clip/toy_RN_trained.pt --classes "textured background,\
#       red disc,green square,blue triangle,yellow ring"
# (docs/maskclip_plus.md: "Your own images (no annotations)").
_base_ = ['./maskclip_plus_toy.py']
# set by tools/maskclip_plus_folder.py: IMAGES, --classes, --clip
image_folder = None
class_names = None
clip_file = None
# the teacher is MaskCLIP on clip_file built as configs/toy/maskclip_toy.py
# builds it: 85 templates, no ks / pd, the toy CLIP's 4-head text tower
teacher_options = dict(templates='imagenet85', ks_thresh=0., pd_thresh=0.,
                       text_encoder=dict(transformer_heads=4))
crop_size = {{_base_.crop_size}}
img_scale = {{_base_.img_scale}}

model = dict(
    teacher=None,  # MaskCLIP on clip_file, set by the tool
    decode_head=dict(num_classes=None))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # no annotation file: a map of the image's size, unlabeled everywhere
    dict(type='UnlabeledSegMap'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='KeepUndistortedImage'),
    dict(type='PhotoMetricDistortion', hue_delta=4),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                    'reduce_zero_label', 'img_undistorted')),
]
# the tool paints the folder's images with the student through this
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True, type='ImageFolderDataset',
        data_prefix=dict(img_path=image_folder),
        metainfo=dict(classes=class_names), pipeline=train_pipeline))
# no validation while training (the folder has no labels); the test data
# stay maskclip_toy.py's, so that the student can be measured on the toy
# labels afterwards with tools/test.py (docs/maskclip_plus.md)
val_cfg = None
val_dataloader = None
val_evaluator = None
