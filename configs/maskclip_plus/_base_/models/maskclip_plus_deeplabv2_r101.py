# MaskCLIP+ student: DeepLabv2 (ASPP, dilations 6/12/18/24) on an ImageNet
# ResNet-101 (output stride 8), classifying with the teacher's frozen class
# text embeddings. The teacher (a MaskCLIP config) is set by each config.
# Branches with BN and ReLU, as the reference's ASPPHeadV2 (its released
# students load as they are).
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='MaskClipPlus',
    # the student's own (ImageNet) normalisation; the teacher's inputs are
    # re-normalised to CLIP's mean/std
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://resnet101_v1c')),
    decode_head=dict(
        type='MaskClipPlusHead',
        decode_module=dict(
            type='ASPPV2Head', dilations=(6, 12, 18, 24), norm_act=True),
        in_channels=2048,
        in_index=3,
        channels=None,  # = text_channels, set with the teacher
        text_channels=None,
        num_classes=None,
        dropout_ratio=0.,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    teacher=None,
    unseen_classes=None,
    self_train_from=-1,
    conf_thresh=0.,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
