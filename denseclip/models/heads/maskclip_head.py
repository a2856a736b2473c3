"""MaskCLIP (Zhou et al., ECCV 2022): dense CLIP features matched with class
text embeddings, one per name (synonyms: several per class)."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...clip.checkpoint import load_clip_checkpoint
from ...clip.files import clip_file_for
from ...clip.class_names import ClassNames
from ...clip.prompt_class_names import (ClassNamesSpec, check_class_names,
                                        resolve_class_name_sets)
from ...clip.prompt_templates import TemplatesSpec, get_templates
from ...clip.text_embedding_file import read_text_embeddings
from ...clip.weights_guard import RandomWeightsError, on_state_dict_load
from ...clip.zero_shot import clip_text_embeddings
from .maskclip_projections import (Projections, projections_from_clip,
                                   read_projections)
from .maskclip_refinements import (key_smoothing, max_over_synonyms,
                                   prompt_denoising)

__all__ = ['MaskClipHead', 'key_smoothing', 'prompt_denoising']

KEY_NORMS = ('channel', 'position')


@MODELS.register_module()
class MaskClipHead(BaseDecodeHead):
    """MaskCLIP's classifier: cosine similarity of CLIP's dense features
    (ResNet: ``c_proj(v_proj(x5))``; ViT: ``proj`` of the backbone's dense
    last block) with the text embedding of every name, then prompt
    denoising (``pd_thresh``) and key smoothing (``ks_thresh``).

    ``forward`` gives per-query scores ``[B, Q, h, w]`` (cosines; with key
    smoothing, probabilities: :attr:`scores_are_probabilities`);
    ``predict_by_feat`` (mmseg's ``EncoderDecoder``) resizes them and takes
    each class's maximum over its synonyms. ``class_names``: a list (an entry
    may be a list of synonyms), a dataset name, or a ``.txt`` file (one class
    per line, synonyms separated by commas); None: ``ClassNamesHook``.
    Weights and options: docs/maskclip.md.
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
        # the class of each text embedding (query); not in checkpoints
        self.register_buffer('query_class', torch.arange(text_categories),
                             persistent=False)
        self.requires_grad_(False)

        # where the weights came from (None: not yet)
        self.projections_source: Optional[str] = None
        self.text_source: Optional[str] = None
        on_state_dict_load(self, lambda: self.projection_names,
                           lambda: self._loaded('projections', 'checkpoint'))
        on_state_dict_load(self, lambda: ['text_embeddings'],
                           lambda: self._loaded('text', 'checkpoint'))

        self.class_names: Optional[List[str]] = None
        self.class_name_sets: Optional[ClassNames] = None
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

    def set_class_names(self, class_names: Union[ClassNamesSpec,
                                                 ClassNames]) -> None:
        """Set the class names (label order, each with its synonyms) the
        text embeddings encode; one embedding per name."""
        options = dict(owner='MaskClipHead',
                       names_option='decode_head.class_names',
                       count_option='decode_head.num_classes')
        if not isinstance(class_names, (str, ClassNames)) and all(
                isinstance(n, str) for n in class_names):
            class_names = check_class_names(class_names, 'the class list',
                                            self.num_classes, **options)
        sets = resolve_class_name_sets(class_names)
        check_class_names(sets.names, sets.source, self.num_classes,
                          **options)
        if sets != self.class_name_sets and self.text_source not in (
                None, self.text_embeddings_path):
            self.text_source = None  # encode the new names on next use
        if sets.num_queries != self.text_embeddings.shape[0]:
            if self.text_source is not None:
                raise ValueError(
                    f'MaskClipHead: {sets.source} gives {sets.num_queries} '
                    f'names but the text embeddings from {self.text_source} '
                    f'are {self.text_embeddings.shape[0]}')
            self.text_embeddings = self.text_embeddings.new_zeros(
                sets.num_queries, self.text_channels)
        self.query_class = torch.tensor(sets.query_class,
                                        device=self.query_class.device)
        self.class_name_sets = sets
        self.class_names = sets.names

    @property
    def num_queries(self) -> int:
        """Text embeddings (names, synonyms included)."""
        return self.text_embeddings.shape[0]

    @property
    def scores_are_probabilities(self) -> bool:
        """Whether :meth:`forward` gives probabilities (key smoothing)
        rather than cosines."""
        return self.ks_thresh > 0

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
                    projections_from_clip(  # a path, a name or hf-hub:
                        load_clip_checkpoint(clip_file_for(self.clip_pretrained)),
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
                        clip_file_for(self.clip_pretrained), self.class_name_sets,
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
        """Set the ``[Q, C]`` embeddings, one per name (L2-normalised here);
        another count or width than the head's is an error naming both."""
        K, C = embeddings.shape
        if K != self.num_queries:
            names = (f'{self.num_queries} names of {self.class_name_sets}'
                     if self.num_queries != self.num_classes else
                     f'text_categories={self.text_categories}')
            raise RandomWeightsError(
                f'{source} holds {K} class embeddings but the head has '
                f'{names} (num_classes={self.num_classes})')
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
        """Cosine similarity with each name's embedding: ``[B, Q, H, W]``."""
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
        """Probabilities from :meth:`forward`'s scores: ``softmax(100 x)``,
        or the scores themselves after key smoothing."""
        return output if self.ks_thresh > 0 else F.softmax(output * 100, dim=1)

    def class_scores(self, scores: Tensor) -> Tensor:
        """``[B, K, ...]`` from per-query scores: each class's maximum over
        its synonyms (the identity without synonyms)."""
        return max_over_synonyms(scores, self.query_class, self.num_classes)

    def forward(self, inputs: Sequence) -> Tensor:
        """Per-query scores ``[B, Q, h, w]``."""
        self.load_weights(require=True)
        feat, keys = self.dense_features(self._transform_inputs(inputs))
        return self.refine(self.cls_seg(feat), keys)

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Per-query scores resized to the input (mmseg's), then per class."""
        return self.class_scores(
            super().predict_by_feat(seg_logits, batch_img_metas))

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        raise RuntimeError(
            'MaskClipHead is not trainable: MaskCLIP segments with a frozen '
            'CLIP and no annotations. To train, use MaskCLIP+ (a '
            'MaskClipPlusHead student trained on MaskCLIP pseudo labels); '
            'for evaluation run tools/test.py.')
