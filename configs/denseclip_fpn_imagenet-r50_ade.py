# DenseCLIP on any backbone: an ImageNet ResNet-50 (mmseg's ResNetV1c) instead
# of CLIP's image tower. BackboneWithEmbeddings pools and projects its last
# stage to the text width (1024) for the global and dense features that the
# context decoder and the score map need; the CLIP RN50 text encoder stays
# frozen (lr x0, no gradient).
_base_ = './denseclip_fpn_r50_ade.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,  # no CLIP image tower: only the text tower is CLIP's
    backbone=dict(
        _delete_=True,
        type='BackboneWithEmbeddings',
        backbone=dict(
            type='ResNetV1c',
            depth=50,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 1, 1),
            strides=(1, 2, 2, 2),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True,
            init_cfg=dict(
                type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')),
        in_channels=2048,
        embed_dim=1024),
    text_encoder=dict(pretrained='pretrained/RN50.pt'))
# the new projection learns at the full rate, the ImageNet backbone at x0.1
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone.proj': dict(lr_mult=1.0)}))
