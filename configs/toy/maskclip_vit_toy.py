# MaskCLIP on the toy problem with a ViT toy CLIP (TOY_CLIP_RECIPES['ViT']):
# as configs/toy/maskclip_toy.py, the image tower a ViT of 8px patches.
#   python tools/toy_demo.py --config configs/toy/maskclip_vit_toy.py
_base_ = ['./maskclip_toy.py']
toy_clip = 'ViT'
toy_root = 'work_dirs/toy'
clip_file = toy_root + '/clip/toy_ViT_trained.pt'
# 2x: 30x37 patches of 8px
test_scale = (1024, 240)

# the toy CLIP's image tower (denseclip.toy.clip_model.TRAINED_VIT): width 128,
# 2 heads, 1 block, patch 8, embedding 64; MaskCLIP reads the last block's
# value path (return_value_path)
model = dict(
    backbone=dict(
        _delete_=True, type='CLIPVisionTransformer', input_resolution=64,
        patch_size=8, width=128, layers=1, heads=2, output_dim=64,
        out_indices=(), get_embeddings=False, return_value_path=True,
        pretrained=clip_file, require_clip_weights=True),
    decode_head=dict(vit=True, in_channels=128, in_index=-1,
                     clip_pretrained=clip_file))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
