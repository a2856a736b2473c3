"""Every OpenAI CLIP architecture (RN50 ... RN50x64, ViT-B/32, B/16, L/14,
L/14@336) and open_clip's ViT-H/14 build at full size, on the meta device
(no memory, no initialisation), with the parameter counts open_clip
publishes for them.

Shapes: open_clip's ``src/open_clip/model_configs/<name>.json``; counts
(millions, two decimals): its ``docs/model_profile.csv``, columns
``image_mparams`` and ``text_mparams`` (mlfoundations/open_clip at 89fb801).
"""
import pytest
import torch
from mmseg.registry import MODELS

import denseclip  # noqa: F401  (registers the towers)

# name: (image size, vision layers, vision width, patch (None: ResNet),
#        head width, embed dim, text width, text heads, text layers,
#        image Mparams, text Mparams)
ARCHS = {
    'RN50': (224, (3, 4, 6, 3), 64, None, 64, 1024, 512, 8, 12,
             38.32, 63.69),
    'RN101': (224, (3, 4, 23, 3), 64, None, 64, 512, 512, 8, 12,
              56.26, 63.43),
    'RN50x4': (288, (4, 6, 10, 6), 80, None, 64, 640, 640, 10, 12,
               87.14, 91.16),
    'RN50x16': (384, (6, 8, 18, 8), 96, None, 64, 768, 768, 12, 12,
                167.33, 123.65),
    'RN50x64': (448, (3, 15, 36, 10), 128, None, 64, 1024, 1024, 16, 12,
                420.38, 202.88),
    'ViT-B-32': (224, 12, 768, 32, 64, 512, 512, 8, 12, 87.85, 63.43),
    'ViT-B-16': (224, 12, 768, 16, 64, 512, 512, 8, 12, 86.19, 63.43),
    'ViT-L-14': (224, 24, 1024, 14, 64, 768, 768, 12, 12, 303.97, 123.65),
    'ViT-L-14-336': (336, 24, 1024, 14, 64, 768, 768, 12, 12, 304.29,
                     123.65),
    'ViT-H-14': (224, 32, 1280, 14, 80, 1024, 1024, 16, 24, 632.08, 354.03),
}


def tower_cfgs(name):
    (size, layers, width, patch, head_width, embed, text_width, text_heads,
     text_layers, _, _) = ARCHS[name]
    if patch is None:
        # OpenAI's ModifiedResNet, attention pooling of width * 32 channels
        # in heads of 64
        image = dict(type='CLIPResNetWithAttention', layers=list(layers),
                     width=width, output_dim=embed, input_resolution=size)
    else:
        image = dict(type='CLIPVisionTransformer', input_resolution=size,
                     patch_size=patch, width=width, layers=layers,
                     heads=width // head_width, output_dim=embed,
                     out_indices=(), get_embeddings=True)
    text = dict(type='CLIPTextTower', context_length=77,
                transformer_width=text_width, transformer_heads=text_heads,
                transformer_layers=text_layers, embed_dim=embed)
    return image, text


def mparams(module):
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 2)


@pytest.mark.parametrize('name', list(ARCHS))
def test_full_size_towers_have_open_clips_parameter_counts(name):
    image_cfg, text_cfg = tower_cfgs(name)
    with torch.device('meta'):
        image = MODELS.build(image_cfg)
        text = MODELS.build(text_cfg)
    assert (mparams(image), mparams(text)) == ARCHS[name][-2:]
    assert next(image.parameters()).device.type == 'meta'
    if ARCHS[name][3] is not None:
        heads = image.transformer.resblocks[0].attn.num_heads
        assert heads == ARCHS[name][2] // ARCHS[name][4]
