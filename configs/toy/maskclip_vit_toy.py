# MaskCLIP on the toy problem with a ViT toy CLIP (TOY_CLIP_RECIPES['ViT']):
# as configs/toy/maskclip_toy.py, the image tower a 3-block ViT of 8px
# patches. SCLIP, ClearCLIP and NACLIP on the same CLIP inherit this file and
# change only the last block and their own settings
# (configs/toy/{sclip,clearclip,naclip}_vit_toy.py; docs/ovss.md, "On the
# toy problem").
#   python tools/toy_demo.py --config configs/toy/maskclip_vit_toy.py
_base_ = ['./maskclip_toy.py']
toy_clip = 'ViT'
toy_root = 'work_dirs/toy'
clip_file = toy_root + '/clip/toy_ViT_trained.pt'
# 2x: 30x37 patches of 8px
test_scale = (1024, 240)

# the toy CLIP's image tower (denseclip.toy.clip_model.TRAINED_VIT): width 128,
# 4 heads (not OpenAI's width // 64; the .pt file records 4, and loading it
# into another count is an error), 3 blocks, patch 8,
# embedding 64; the last block run as MaskCLIP does (its value path, with the
# residual and the FFN)
model = dict(
    type='TrainingFreeSegmentor',
    # the training-free protocol (docs/ovss.md): the toy's background is a
    # named class, so no background threshold (as on the benchmarks without
    # background); PAMR off (tools/toy_method_table.py adds the + PAMR rows:
    # model.pamr=dict(type='PAMR', num_iter=10, dilations=(8, 16)))
    logit_scale=40.0, prob_thd=0.0, pamr=None,
    backbone=dict(
        _delete_=True, type='CLIPVisionTransformer', input_resolution=64,
        patch_size=8, width=128, layers=3, heads=4, output_dim=64,
        out_indices=(), get_embeddings=False,
        dense_last_block=dict(mode='maskclip'), pos_interpolation='bilinear',
        pretrained=clip_file, require_clip_weights=True),
    decode_head=dict(vit=True, in_channels=128, in_index=-1,
                     clip_pretrained=clip_file))
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
tta_model = dict(type='TrainingFreeTTAModel')
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
