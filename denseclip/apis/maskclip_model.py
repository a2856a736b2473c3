"""A whole MaskCLIP segmentor config from nothing but an OpenAI CLIP file.

The image tower's type and shape are read from the file
(:mod:`denseclip.models.clip_arch`), so ``maskclip_model_cfg('ViT-B-16.pt',
['cat', 'sky'])`` is a ready ``TrainingFreeSegmentor`` config (mmseg's
``EncoderDecoder``, labels brought to the image size 64 classes at a time,
so that 1,000 names fit in memory): the backbone
reads the file on first use (``require_clip_weights``), the head takes its
projections and computes the class text embeddings from it.
"""
from typing import Optional

from mmengine.config import ConfigDict

from ..clip_io import load_clip_checkpoint
from ..models.clip_arch import clip_visual_cfg
from ..models.clip_constants import CLIP_DATA_PREPROCESSOR
from ..models.segmentors.training_free_segmentor import DEFAULT_CLASS_CHUNK
from ..models.text.prompt_class_names import (ClassNamesSpec,
                                              resolve_class_name_sets)
from ..models.text.prompt_templates import TemplatesSpec


def maskclip_model_cfg(clip_file: str,
                       class_names: ClassNamesSpec,
                       ks_thresh: float = 0.,
                       pd_thresh: float = 0.,
                       templates: TemplatesSpec = 'imagenet85',
                       text_encoder: Optional[dict] = None,
                       text_cache_dir: Optional[str] = None) -> ConfigDict:
    """``TrainingFreeSegmentor`` config of MaskCLIP on the CLIP model in
    ``clip_file``.

    Args:
        clip_file: an OpenAI CLIP file (any ResNet or ViT).
        class_names: list, dataset name or ``.txt`` file
            (:func:`~denseclip.models.text.prompt_class_names.resolve_class_names`).
        ks_thresh, pd_thresh, templates, text_encoder, text_cache_dir: as in
            :class:`~denseclip.models.heads.MaskClipHead`.
    """
    sets = resolve_class_name_sets(class_names)
    names = [list(s) if len(s) > 1 else s[0] for s in sets.synonyms]
    backbone = clip_visual_cfg(load_clip_checkpoint(clip_file), clip_file)
    backbone.update(pretrained=clip_file, require_clip_weights=True)
    vit = backbone['type'] == 'CLIPVisionTransformer'
    if vit:
        backbone.update(return_value_path=True, get_embeddings=False)
        in_channels, in_index = backbone['width'], -1
    else:
        in_channels, in_index = backbone['width'] * 32, 3
    head = dict(
        type='MaskClipHead',
        vit=vit,
        in_channels=in_channels,
        in_index=in_index,
        channels=0,
        text_channels=backbone['output_dim'],
        num_classes=len(names),
        clip_pretrained=clip_file,
        class_names=names,
        templates=templates,
        text_encoder=text_encoder,
        text_cache_dir=text_cache_dir,
        ks_thresh=ks_thresh,
        pd_thresh=pd_thresh,
        align_corners=False)
    return ConfigDict(
        type='TrainingFreeSegmentor',
        data_preprocessor=dict(CLIP_DATA_PREPROCESSOR),
        backbone=backbone,
        decode_head=head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole', class_chunk=DEFAULT_CLASS_CHUNK))
