# DenseCLIP on the toy problem that `make demo` (tools/toy_demo.py) generates:
# a tiny CLIP (OpenAI TorchScript format, random weights: see
# denseclip.toy.clip_model.DEMO_RESNET) and a synthetic dataset of coloured shapes
# in ADE20K's folder layout (denseclip.toy.data). It is the paper's
# DenseCLIP-RN50 config with small widths, 128x128 crops, a short schedule and
# a higher learning rate; the pipeline, the optimizer's parameter groups, the
# losses and slide inference are the same. Train and test it like any config:
#   python tools/train.py configs/toy/denseclip_toy.py
#   python tools/test.py configs/toy/denseclip_toy.py \
#       work_dirs/denseclip_toy/iter_600.pth --show-dir vis [--tta]
# (tools/toy_demo.py writes the files first and points the paths at them).
_base_ = [
    '../_base_/models/denseclip_r50.py', '../_base_/datasets/ade20k_clip.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k_denseclip.py'
]
toy_root = 'work_dirs/toy'
data_root = toy_root + '/ade/ADEChallengeData2016'
clip_file = toy_root + '/clip/toy_RN.pt'
# = denseclip.toy.data.TOY_CLASSES / TOY_PALETTE (label k + 1 on disk)
metainfo = dict(
    classes=('textured background', 'red disc', 'green square',
             'blue triangle', 'yellow ring'),
    palette=[[120, 120, 120], [220, 40, 40], [40, 180, 40], [40, 60, 220],
             [230, 210, 40]])
num_classes = 5
crop_size = (128, 128)
img_scale = (512, 128)

# ---------------------------------------------------------------- model
# the shape of the toy CLIP file (denseclip.toy.clip_model.DEMO_RESNET): a modified
# ResNet of width 16 with blocks (1, 1, 1, 1) (stages 64..512 channels), a
# 2-layer width-64 text transformer, CLIP embedding width 64. The heads keep
# the base's SyncBN, which the runner turns into BN without distribution.
model = dict(
    pretrained=clip_file,
    class_names=None,  # from the dataset's metainfo, by ClassNamesHook
    token_embed_dim=64,
    text_dim=64,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        layers=[1, 1, 1, 1], width=16, output_dim=64,
        input_resolution=crop_size[0]),
    text_encoder=dict(
        context_length=13, embed_dim=64, transformer_width=64,
        transformer_heads=4, transformer_layers=2),
    context_decoder=dict(
        transformer_width=32, transformer_heads=4, transformer_layers=3,
        visual_dim=64),
    neck=dict(in_channels=[64, 128, 256, 512 + num_classes], out_channels=32),
    decode_head=dict(
        in_channels=[32, 32, 32, 32], channels=32, num_classes=num_classes),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(85, 85)))
custom_hooks = [dict(type='ClassNamesHook')]

# ----------------------------------------------------------------- data
dataset_type = 'BaseSegDataset'  # ADE20KDataset's layout, our own classes
dataset = dict(
    type=dataset_type, data_root=data_root, metainfo=metainfo,
    img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize',
                  scale=(int(img_scale[0] * r), int(img_scale[1] * r)),
                  keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        _delete_=True, **dataset,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        _delete_=True, **dataset,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# ------------------------------------------------------------- schedule
max_iters = 600
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    # with --show-dir, paint every test image (the default is every 50th)
    visualization=dict(interval=1))
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
