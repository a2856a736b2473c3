# MaskCLIP on the toy problem of `make demo`, annotation-free: a toy CLIP
# (ResNet image tower) trained contrastively on toy images and captions that
# name their colours, shapes and background (denseclip.toy.clip_training,
# TOY_CLIP_RECIPES['RN']; it never sees a class map), then MaskCLIP with its
# frozen weights on the toy validation split: whole inference, no training.
#   python tools/toy_demo.py --config configs/toy/maskclip_toy.py
# (trains the toy CLIP once and caches it, writes or reuses the toy data, runs
# tools/test.py without a checkpoint, prints the mIoU), or, with the files
# present:
#   python tools/test.py configs/toy/maskclip_toy.py [--cfg-options
#       model.decode_head.ks_thresh=1.0 model.decode_head.pd_thresh=0.5]
_base_ = [
    '../_base_/default_runtime.py',
    '../maskclip/_base_/maskclip_test_runtime.py',
    '../maskclip/_base_/models/maskclip_data_preprocessor.py'
]
# tools/toy_demo.py trains (once) the toy CLIP of this family and points
# clip_file and data_root at the files it wrote
toy_clip = 'RN'
toy_root = 'work_dirs/toy'
data_root = toy_root + '/ade/ADEChallengeData2016'
clip_file = toy_root + '/clip/toy_RN_trained.pt'
# = denseclip.toy.data.TOY_CLASSES / TOY_PALETTE (label k + 1 on disk); the
# class names are also the text MaskCLIP matches (prompt ensembling over the
# paper's 85 templates)
metainfo = dict(
    classes=('textured background', 'red disc', 'green square',
             'blue triangle', 'yellow ring'),
    palette=[[120, 120, 120], [220, 40, 40], [40, 180, 40], [40, 60, 220],
             [230, 210, 40]])
num_classes = 5
# the 120x150 validation images are read at 4x: the last stage is 1/32 of
# the input, and at 4x it holds 15x20 positions
test_scale = (2048, 480)

# the toy CLIP's image tower (denseclip.toy.clip_model.TRAINED_RESNET): a modified
# ResNet of width 16 (last stage 512 channels, an attention pool of 8 heads),
# CLIP embedding 64; its text tower is 64 wide with 4 heads (OpenAI's rule
# would give 1; the .pt file records 4, text_encoder says so for a state dict)
model = dict(
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='CLIPResNet', layers=[1, 1, 1, 1], width=16, output_dim=64,
        input_resolution=64, pretrained=clip_file, require_clip_weights=True),
    decode_head=dict(
        type='MaskClipHead', vit=False, in_channels=16 * 32, in_index=3,
        channels=0, text_channels=64, num_classes=num_classes,
        clip_pretrained=clip_file, class_names=list(metainfo['classes']),
        templates='imagenet85', text_encoder=dict(transformer_heads=4),
        ks_thresh=0., pd_thresh=0., align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# ----------------------------------------------------------------- data
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
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
            [dict(type='Resize',
                  scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                  keep_ratio=True) for r in tta_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
default_hooks = dict(
    logger=dict(interval=10),
    # with --show-dir, paint every test image (mmseg's default: every 50th)
    visualization=dict(interval=1))
