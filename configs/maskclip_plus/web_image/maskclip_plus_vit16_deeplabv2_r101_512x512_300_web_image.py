# MaskCLIP+ on a folder of your own images named only by free-form classes
# (the paper's Batman / Joker figures): DeepLabv2-R101 trained for 300
# iterations on the pseudo labels of MaskCLIP ViT-B/16, no annotation file at
# all. As the reference's anno_free/web_image/
# maskclip_plus_vit16_deeplabv2_r101-d8_512x512_300_{batman,gates,mario,
# mickey}.py. A template for tools/maskclip_plus_folder.py, which fills in
# the image folder, the class names and the teacher (MaskCLIP on --clip):
#   python tools/maskclip_plus_folder.py IMAGES --classes "Batman,Joker,..." \
#       --clip pretrained/ViT-B-16.pt
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
# set by tools/maskclip_plus_folder.py: IMAGES, --classes, --clip
image_folder = None
class_names = None
clip_file = 'pretrained/ViT-B-16.pt'
# the teacher is MaskCLIP on clip_file (denseclip.apis.maskclip_model_cfg
# with these options): the paper's 85 prompt templates, no key smoothing or
# prompt denoising, as the reference's web-image teachers
teacher_options = dict(templates='imagenet85', ks_thresh=0., pd_thresh=0.,
                       text_encoder=None)
crop_size = (512, 512)
img_scale = (2048, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    teacher=None,  # MaskCLIP on clip_file, set by the tool
    # channels, text_channels (CLIP's embedding width) and num_classes are
    # set by the tool from the CLIP file and the class names
    decode_head=dict(channels=None, text_channels=None, num_classes=None),
    unseen_classes=None,  # annotation-free: every pixel is pseudo-labelled
    # the reference's web-image runs do not self-train; with
    # model.self_train_from set, a self-training label stands only where
    # the teacher agrees (docs/maskclip_plus.md)
    self_train_from=-1,
    self_train_agreement=True)

# ----------------------------------------------------------------- data
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # no annotation file: a map of the image's size, unlabeled everywhere
    dict(type='UnlabeledSegMap'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    # with one category (unlabeled) every crop fails cat_max_ratio and the
    # tenth random crop is taken, as in the reference
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    # the teacher labels the crop as it was before the colour distortion;
    # the student learns from the distorted one
    dict(type='KeepUndistortedImage'),
    dict(type='PhotoMetricDistortion'),
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
# the reference: 4 images per GPU
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ImageFolderDataset', data_prefix=dict(img_path=image_folder),
        metainfo=dict(classes=class_names), pipeline=train_pipeline))
# nothing to validate against: no annotations
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

# ------------------------------------------------------------- schedule
# the reference's schedule_300: SGD lr 0.01, poly decay to 1e-4
iters = 300
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=iters,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                 val_interval=iters + 1)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=iters),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
