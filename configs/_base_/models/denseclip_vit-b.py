# DenseCLIP with CLIP ViT-B/16 + FPN, 640x640, ADE20K 150 classes.
# Ported from the reference's denseclip_fpn_vit-b_640x640_80k.py.
_base_ = ['./denseclip_r50.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
num_classes = 150
model = dict(
    pretrained='pretrained/ViT-B-16.pt',
    text_dim=512,
    # the ViT pyramid is 768 channels at strides 4, 8, 16, 32; the score map
    # (stride 16, the token grid) is concatenated to the third level
    score_concat_index=2,
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        _delete_=True,
        type='CLIPVisionTransformer',
        input_resolution=640,
        patch_size=16,
        width=768,
        layers=12,
        heads=12,
        output_dim=512,
        drop_path_rate=0.1,
        out_indices=[3, 5, 7, 11],
        get_embeddings=True,
        # the pyramid's BN between the transposed convolutions (reference:
        # nn.SyncBatchNorm; reverted to BN by the runner without distribution)
        norm_cfg=norm_cfg,
        # CLIP adds the class embedding once. The reference adds it twice and
        # its released ViT-B checkpoint was trained that way: to test that
        # checkpoint, set True (configs/denseclip_fpn_vit-b_ade_640_released.py
        # does). Training from OpenAI's ViT-B-16.pt uses CLIP's own (False).
        add_class_embedding_twice=False),
    text_encoder=dict(embed_dim=512),
    context_decoder=dict(visual_dim=512),
    neck=dict(in_channels=[768, 768, 768 + num_classes, 768]),
    test_cfg=dict(crop_size=(640, 640), stride=(426, 426)))
