"""MaskCLIP (Zhou et al., ECCV 2022): annotation-free segmentation from a frozen CLIP."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...clip_io import load_clip_checkpoint
from ..text.prompt_class_names import (ClassNamesSpec, check_class_names,
                                       resolve_class_names)
from ..text.prompt_templates import TemplatesSpec, get_templates
from ..text.text_embedding_file import read_text_embeddings
from ..text.zero_shot import clip_text_embeddings
from ..weights_guard import RandomWeightsError, on_state_dict_load
from .maskclip_projections import (Projections, projections_from_clip,
                                   read_projections)

KEY_NORMS = ('channel', 'position')


def prompt_denoising(logits: Tensor, thresh: float) -> Tensor:
    """Suppress the classes no position is confident about.

    ``p = softmax(100 * logits)`` over classes; a class whose highest
    probability over all positions of an image is below ``thresh`` gets the
    logit -100 everywhere in that image (as in the paper and the reference).
    """
    probs = F.softmax(logits * 100, dim=1)
    confident = probs.flatten(2).amax(dim=2) >= thresh  # [B, K]
    return logits.masked_fill(~confident[:, :, None, None], -100.)


def key_smoothing(probs: Tensor, keys: Tensor, thresh: float,
                  key_norm: str = 'channel') -> Tensor:
    """Smooth the uncertain positions' class probabilities over similar keys.

    Positions whose top class probability is below ``thresh`` take
    ``sum_j sim(k_i, k_j) p_j`` over all positions ``j`` of the image; the
    others keep ``p_i``.

    ``key_norm`` is the axis the keys are L2-normalised over before the dot
    product. ``'channel'`` (default) normalises each key, so ``sim`` is the
    cosine similarity of two keys, as the paper defines it; it does not
    depend on the image size. ``'position'`` is what the reference code does
    (``F.normalize(k, p=2)`` on ``[B, HW, C]`` normalises dim 1): each channel
    is scaled to unit norm over the positions, so ``sim`` is a dot product of
    rescaled keys whose magnitude shrinks as the image grows; offered only to
    reproduce the reference's numbers.

    The keys are the key projections of the last attention layer: the
    attention pool's ``k_proj(x5)`` for a ResNet, ``k_proj(ln_1(x))`` of the
    last block for a ViT. (The reference's ViT passes q, k and v through
    ``out_proj`` in one batched call, so its keys are ``out_proj(k)``; we use
    the keys themselves, as the paper describes.)

    Args:
        probs: ``[B, K, H, W]`` class probabilities.
        keys: ``[B, C, H, W]`` keys of the last attention layer.
    """
    B, K, H, W = probs.shape
    if keys.shape[0] != B or tuple(keys.shape[2:]) != (H, W):
        raise ValueError(f'key smoothing: keys {tuple(keys.shape)} do not '
                         f'match the class map {tuple(probs.shape)}')
    p = probs.flatten(2).transpose(1, 2)  # [B, HW, K]
    k = keys.flatten(2).transpose(1, 2).to(p.dtype)  # [B, HW, C]
    k = F.normalize(k, p=2, dim=2 if key_norm == 'channel' else 1)
    smoothed = torch.bmm(k, torch.bmm(k.transpose(1, 2), p))  # (k k^T) p
    uncertain = p.amax(dim=2, keepdim=True) < thresh
    p = torch.where(uncertain, smoothed, p)
    return p.transpose(1, 2).reshape(B, K, H, W)


@MODELS.register_module()
class MaskClipHead(BaseDecodeHead):
    """MaskCLIP: match CLIP's dense image features with class text embeddings.

    Dense features: for a CLIP ResNet (``vit=False``, input the last stage map
    ``x5``) ``c_proj(v_proj(x5))``, the attention pool's value and output
    projections as 1x1 convolutions (no query or key, no positional
    embedding); for a CLIP ViT (``vit=True``, input the backbone's
    ``return_value_path`` output) ``proj`` applied to the last block's value
    path after ``ln_post``. Logits are the cosine similarities of the
    features with the L2-normalised text embeddings ``[K, C]`` (no
    temperature). Then, if enabled: prompt denoising (``pd_thresh``, see
    :func:`prompt_denoising`) and key smoothing (``ks_thresh``, see
    :func:`key_smoothing`; the output is then class probabilities rather
    than cosine logits, argmax-equivalent).

    Weights, each from the first source that has them (checked before the
    first forward: MaskCLIP never runs on random weights):

    * projections: a checkpoint of the model (``load_from``), else
      ``visual_projs_path`` (the reference's file,
      ``tools/convert_clip_weights.py``), else ``clip_pretrained``;
    * text embeddings: a checkpoint, else ``text_embeddings_path`` (the
      reference's ``[K, C]`` file, ``tools/prompt_engineering.py``), else
      computed from ``class_names`` with the text tower of
      ``clip_pretrained`` by prompt ensembling over ``templates``, cached on
      disk (:mod:`denseclip.models.text.text_embedding_cache`).

    The image backbone gets its CLIP weights on its own (``model.pretrained``
    or ``backbone.pretrained``, with ``require_clip_weights=True``).

    Args:
        in_channels: channels of the input feature (ResNet ``width * 32``,
            ViT ``width``).
        text_channels: CLIP's embedding width.
        text_categories: number of text embeddings; must equal ``num_classes``
            (defaults to it).
        text_embeddings_path: a ``[K, C]`` tensor file (reference format).
        visual_projs_path: a visual projection file (reference format).
        vit: the backbone is a CLIP ViT.
        ks_thresh: key smoothing for positions whose top probability is
            below it (0: off; the reference's setting is 1.0).
        pd_thresh: prompt denoising threshold (0: off; reference: 0.5).
        clip_pretrained: an OpenAI CLIP file (``pretrained/ViT-B-16.pt``)
            for the projections and the text embeddings.
        class_names: names (list), a dataset name (``'voc20'``,
            ``'pascal_context59'``, ``'coco_stuff164k'``, ``'ade'``,
            ``'cityscapes'`` ...), a ``.txt`` file with one name per line, or
            None to take the dataset's classes (``ClassNamesHook``).
        templates: ``'imagenet85'`` (the paper's 85), ``'single'``, another
            set name or a list of templates.
        text_encoder: overrides of the text tower config inferred from the
            CLIP file (only for models with non-standard heads).
        text_cache: keep computed text embeddings on disk.
        text_cache_dir: where (default ``~/.cache/denseclip``).
        ks_key_norm: ``'channel'`` (cosine of keys, the paper) or
            ``'position'`` (the reference code); see :func:`key_smoothing`.
    """

    def __init__(self,
                 in_channels: int,
                 text_channels: int,
                 text_categories: Optional[int] = None,
                 text_embeddings_path: Optional[str] = None,
                 visual_projs_path: Optional[str] = None,
                 vit: bool = False,
                 ks_thresh: float = 0.,
                 pd_thresh: float = 0.,
                 clip_pretrained: Optional[str] = None,
                 class_names: Optional[ClassNamesSpec] = None,
                 templates: TemplatesSpec = 'imagenet85',
                 text_encoder: Optional[dict] = None,
                 text_cache: bool = True,
                 text_cache_dir: Optional[str] = None,
                 ks_key_norm: str = 'channel',
                 channels: int = 0,
                 num_classes: Optional[int] = None,
                 **kwargs):
        if num_classes is None:
            num_classes = text_categories
        if text_categories is None:
            text_categories = num_classes
        if num_classes is None:
            raise ValueError('MaskClipHead needs num_classes (or '
                             'text_categories)')
        if num_classes < 2:
            raise ValueError(
                f'MaskClipHead needs at least 2 classes (each position takes '
                f'the most similar one), got num_classes={num_classes}')
        if text_categories != num_classes:
            raise ValueError(
                f'MaskClipHead: text_categories ({text_categories}) must '
                f'equal num_classes ({num_classes}): one text embedding per '
                f'class')
        if ks_key_norm not in KEY_NORMS:
            raise ValueError(f'ks_key_norm must be one of {KEY_NORMS}, got '
                             f'{ks_key_norm!r}')
        if not isinstance(in_channels, int):
            raise TypeError(f'MaskClipHead takes one feature map: in_channels '
                            f'must be an int, got {in_channels!r}')
        kwargs.setdefault('dropout_ratio', 0.)
        kwargs['init_cfg'] = kwargs.get('init_cfg') or None
        with warnings.catch_warnings():  # BaseDecodeHead's conv_seg, deleted
            warnings.filterwarnings('ignore', 'Initializing zero-element')
            super().__init__(in_channels, channels, num_classes=num_classes,
                             **kwargs)
        del self.conv_seg  # the text embeddings are the classifier
        self.dropout = None

        self.text_categories = text_categories
        self.text_channels = text_channels
        self.text_embeddings_path = text_embeddings_path
        self.visual_projs_path = visual_projs_path
        self.vit = vit
        self.ks_thresh = ks_thresh
        self.pd_thresh = pd_thresh
        self.ks_key_norm = ks_key_norm
        self.clip_pretrained = clip_pretrained
        self.templates = get_templates(templates)
        self.text_encoder_overrides = dict(text_encoder or {})
        self.text_cache = text_cache
        self.text_cache_dir = text_cache_dir

        # CLIP's projections as 1x1 convolutions, named as in the reference
        if vit:
            self.proj = nn.Conv2d(in_channels, text_channels, 1, bias=False)
        else:
            self.k_proj = nn.Conv2d(in_channels, in_channels, 1)
            self.v_proj = nn.Conv2d(in_channels, in_channels, 1)
            self.c_proj = nn.Conv2d(in_channels, text_channels, 1)
        self.register_buffer('text_embeddings',
                             torch.zeros(text_categories, text_channels))
        self.requires_grad_(False)

        # where the weights came from (None: not yet)
        self.projections_source: Optional[str] = None
        self.text_source: Optional[str] = None
        on_state_dict_load(self, lambda: self.projection_names,
                           lambda: self._loaded('projections', 'checkpoint'))
        on_state_dict_load(self, lambda: ['text_embeddings'],
                           lambda: self._loaded('text', 'checkpoint'))

        self.class_names: Optional[List[str]] = None
        if class_names is not None:
            self.set_class_names(class_names)

    # --------------------------------------------------------------- weights
    @property
    def projection_names(self) -> List[str]:
        """State-dict keys of the projections."""
        convs = ('proj', ) if self.vit else ('k_proj', 'v_proj', 'c_proj')
        return [k for k in self.state_dict() if k.split('.')[0] in convs]

    def _loaded(self, what: str, source: str) -> None:
        setattr(self, f'{what}_source', source)

    def set_class_names(self, class_names: ClassNamesSpec) -> None:
        """Set the class names (in label order) the text embeddings encode."""
        names = check_class_names(
            resolve_class_names(class_names), 'the class list',
            self.num_classes, 'MaskClipHead',
            names_option='decode_head.class_names',
            count_option='decode_head.num_classes')
        if names != self.class_names and self.text_source not in (
                None, self.text_embeddings_path):
            self.text_source = None  # encode the new names on next use
        self.class_names = names

    def init_weights(self) -> None:
        """Load what the configured files give (missing sources are an error
        only at the first forward: a checkpoint may still be loaded)."""
        super().init_weights()
        self.load_weights(require=False)

    def load_weights(self, require: bool = True) -> None:
        """Fill projections and text embeddings that have no source yet."""
        if self.projections_source is None:
            if self.visual_projs_path is not None:
                self.set_projections(
                    read_projections(self.visual_projs_path),
                    self.visual_projs_path)
            elif self.clip_pretrained is not None:
                self.set_projections(
                    projections_from_clip(
                        load_clip_checkpoint(self.clip_pretrained),
                        self.clip_pretrained), self.clip_pretrained)
            elif require:
                raise RandomWeightsError(
                    "MaskClipHead has no visual projections and would run on "
                    "random ones: give decode_head.clip_pretrained (the "
                    "OpenAI CLIP file, e.g. 'pretrained/ViT-B-16.pt') or "
                    "decode_head.visual_projs_path (the reference's file, "
                    "tools/convert_clip_weights.py), or load a whole "
                    "checkpoint of the model (load_from=)")
        if self.text_source is None:
            if self.text_embeddings_path is not None:
                self.set_text_embeddings(
                    read_text_embeddings(self.text_embeddings_path,
                                         owner='MaskClipHead'),
                    self.text_embeddings_path)
            elif self.clip_pretrained is not None and self.class_names:
                self.set_text_embeddings(
                    clip_text_embeddings(
                        self.clip_pretrained, self.class_names,
                        self.templates, self.text_encoder_overrides,
                        cache=self.text_cache,
                        cache_dir=self.text_cache_dir,
                        device=self.text_embeddings.device),
                    f'{self.clip_pretrained} (prompt ensembling over '
                    f'{len(self.templates)} templates)')
            elif require:
                missing = ('class names: set decode_head.class_names (a list, '
                           "a dataset name such as 'voc20', or a .txt file) "
                           "or add custom_hooks=[dict(type='ClassNamesHook')]"
                           if self.clip_pretrained is not None else
                           "text embeddings: give decode_head.clip_pretrained "
                           "(the OpenAI CLIP file) and class_names, or "
                           "text_embeddings_path (tools/prompt_engineering.py)"
                           ", or load a whole checkpoint (load_from=)")
                raise RandomWeightsError(f'MaskClipHead has no {missing}')

    def set_projections(self, projs: Projections, source: str) -> None:
        """Copy projections (reference layout, ``[out, in]``) into the head.

        A name or shape that does not fit is an error naming the file and
        both shapes (text width vs ``text_channels``, visual width vs
        ``in_channels``).
        """
        names = ('proj', ) if self.vit else ('k_proj', 'v_proj', 'c_proj')
        other = 'ResNet' if self.vit else 'ViT'
        for name in names:
            if name not in projs:
                raise RandomWeightsError(
                    f'{source} has no {name!r} projection (it holds '
                    f'{sorted(projs)}); is it the file of a CLIP {other} '
                    f'while the head has vit={self.vit}?')
            conv = getattr(self, name)
            weight = projs[name]['weight']
            expected = tuple(conv.weight.shape[:2])
            out_option = ('text_channels' if name in ('proj', 'c_proj') else
                          'in_channels')
            if tuple(weight.shape) != expected:
                raise RandomWeightsError(
                    f'{source}: projection {name!r} is {tuple(weight.shape)} '
                    f'([out, in]) but the head needs {expected} (out: '
                    f'{out_option}={expected[0]}, in: in_channels='
                    f'{expected[1]}); the file is of another CLIP model')
            with torch.no_grad():
                conv.weight.copy_(weight[:, :, None, None])
                if conv.bias is not None:
                    conv.bias.copy_(projs[name]['bias'])
        self.projections_source = source
        print_log(f'MaskClipHead: projections {", ".join(names)} from '
                  f'{source}', logger='current')

    def set_text_embeddings(self, embeddings: Tensor, source: str) -> None:
        """Set the ``[K, C]`` class embeddings (L2-normalised here).

        A class count or width other than the head's is an error naming both.
        """
        K, C = embeddings.shape
        if K != self.text_categories:
            raise RandomWeightsError(
                f'{source} holds {K} class embeddings but the head has '
                f'text_categories={self.text_categories} (num_classes='
                f'{self.num_classes})')
        if C != self.text_channels:
            raise RandomWeightsError(
                f'{source} holds embeddings of width {C} but the head has '
                f'text_channels={self.text_channels}; is it the file of '
                f'another CLIP model?')
        with torch.no_grad():
            self.text_embeddings.copy_(F.normalize(embeddings.float(), dim=1))
        self.text_source = source
        print_log(f'MaskClipHead: {K} text embeddings from {source}',
                  logger='current')

    # --------------------------------------------------------------- forward
    def dense_features(self, x: Union[Tensor, Dict[str, Tensor]]
                       ) -> Tuple[Tensor, Optional[Tensor]]:
        """CLIP embeddings per position ``[B, C, H, W]`` and the keys (or None)."""
        if self.vit:
            if not isinstance(x, dict) or 'dense' not in x:
                raise TypeError(
                    'MaskClipHead(vit=True) needs the dense features of the '
                    "last ViT block: set dense_last_block=dict(mode='maskclip')"
                    ' (or another mode) on the CLIPVisionTransformer backbone '
                    '(and in_index=-1)')
            return self.proj(x['dense']), x.get('key')
        if isinstance(x, dict):
            raise TypeError('MaskClipHead got the dense features of a ViT '
                            'but has vit=False')
        keys = self.k_proj(x) if self.ks_thresh > 0 else None
        return self.c_proj(self.v_proj(x)), keys

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Cosine similarity with each class embedding: ``[B, K, H, W]``."""
        text = F.normalize(self.text_embeddings, dim=1).to(feat.dtype)
        return F.conv2d(F.normalize(feat, dim=1), text[:, :, None, None])

    def refine(self, logits: Tensor, keys: Optional[Tensor]) -> Tensor:
        """Prompt denoising, then key smoothing, as configured."""
        if self.pd_thresh > 0:
            logits = prompt_denoising(logits, self.pd_thresh)
        if self.ks_thresh > 0:
            if keys is None:
                raise ValueError('key smoothing needs the keys of the last '
                                 'attention layer; none were given')
            logits = key_smoothing(
                F.softmax(logits * 100, dim=1), keys, self.ks_thresh,
                self.ks_key_norm)
        return logits

    def probabilities(self, output: Tensor) -> Tensor:
        """Class probabilities from this head's output: ``softmax(100 * logits)``,
        or the output itself when key smoothing already produced them."""
        return output if self.ks_thresh > 0 else F.softmax(output * 100, dim=1)

    def forward(self, inputs: Sequence) -> Tensor:
        self.load_weights(require=True)
        feat, keys = self.dense_features(self._transform_inputs(inputs))
        return self.refine(self.cls_seg(feat), keys)

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        raise RuntimeError(
            'MaskClipHead is not trainable: MaskCLIP segments with a frozen '
            'CLIP and no annotations. To train, use MaskCLIP+ (a '
            'MaskClipPlusHead student trained on MaskCLIP pseudo labels); '
            'for evaluation run tools/test.py.')
