"""DenseCLIP (Rao et al., CVPR 2022) as an mmseg 1.x segmentor."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor, nn

from ...clip.prompt_class_names import check_class_names, resolve_class_names
from ...clip.tokenizer import tokenize
from ..layers.cuda_graphed_call import CudaGraphedCall
from ..text.shared_prefix_encoding import encode_with_shared_prefix
from .separable_loss_segmentor import SeparableLossSegmentorMixin


def float32_region(device_type: str):
    """Autocast off: what runs inside stays in float32 under AMP."""
    return torch.autocast(device_type, enabled=False)


class TextPath(nn.Module):
    """The class names through the text encoder as a module of the
    contexts alone (what a CUDA graph captures): ``[B, N, C] -> [B, K,
    embed_dim]``."""

    def __init__(self, text_encoder: nn.Module, texts: Tensor,
                 share_prefix: bool):
        super().__init__()
        self.text_encoder = text_encoder
        self.texts = texts
        self.share_prefix = share_prefix

    def forward(self, contexts: Tensor) -> Tensor:
        if self.share_prefix:
            return encode_with_shared_prefix(self.text_encoder, self.texts,
                                             contexts)
        return self.text_encoder(self.texts, contexts)


@MODELS.register_module()
class DenseCLIP(SeparableLossSegmentorMixin, EncoderDecoder):
    """Language-guided dense prediction with context-aware prompting.

    With CLIP features (stage maps ``x1..x4``, global ``g``, dense ``z``) and
    ``K`` class names:

    1. ``t = text_encoder(names, contexts)`` (learnable contexts; cached in
       eval mode, ``t`` depends only on weights);
    2. ``t = t + gamma * context_decoder(t, [g; z])`` (post-model prompting);
    3. ``s = <norm(z), norm(t)>`` ``[B, K, h, w]`` is concatenated to stage
       ``score_concat_index``; neck and decode head run on the result;
    4. training adds ``CE(s / tau, y)`` (``identity_head``) and optionally an
       auxiliary head's loss.

    ``prompting='pre'`` replaces 1-2 by ``v = context_decoder(contexts,
    [g; z])``, ``t = text_encoder(names, v)`` (per image, not cached). Under
    autocast the text path, ``gamma`` and the losses stay float32. Both in
    docs/denseclip.md.

    Args:
        backbone: a CLIP image tower returning 4 stage maps and ``[g, z]``
            (or any backbone wrapped in ``BackboneWithEmbeddings``).
        text_encoder: ``CLIPTextContextEncoder``.
        context_decoder: ``ContextDecoder``.
        decode_head: the segmentation head (e.g. ``FPNHead``).
        class_names: the class names, a dataset name known to
            ``mmseg.utils.get_classes`` (``'ade'``, ``'voc'`` ...), or None to
            take them from the dataset's metainfo (``ClassNamesHook``).
        context_length: token length of a class name (start and end
            included); the rest of the text encoder's length holds the
            learnable contexts. Longer names are an error unless
            ``truncate_class_names``.
        context_feature: ``'attention'``: the context decoder attends to
            ``[g; z]``; ``'backbone'``: to the last stage map (set
            ``context_decoder.memory_dim`` to its channels).
        score_concat_index: stage the score map is concatenated to.
        text_head: pass ``t`` to the decode head before the feature maps.
        tau: temperature of the pixel-text loss.
        token_embed_dim: width of the contexts (the text tower's width).
        text_dim: width of the text features (CLIP's embedding width).
        freeze_text_encoder: keep the text encoder's weights fixed (the
            paper); gradients still reach the contexts through it.
        prompting: ``'post'`` (post-model, cached text) or ``'pre'``.
        cache_text: in eval mode, reuse the (post-model) text features until
            the weights change; off only to measure what the cache saves.
        share_text_prefix: encode ``[sot] + contexts`` (the same for every
            class) once (``encode_with_shared_prefix``); off only to measure.
        cuda_graphs: in training on a GPU, run the text path and the
            context decoder (forward and backward) from CUDA graphs
            (:class:`~denseclip.models.layers.cuda_graphed_call.
            CudaGraphedCall`): thousands of small kernels become a few
            launches. Same results; off to compare or to debug.
        pretrained: one OpenAI CLIP file for both the image and text towers.
    """

    def __init__(self,
                 backbone: dict,
                 text_encoder: dict,
                 context_decoder: dict,
                 decode_head: dict,
                 class_names: Union[Sequence[str], str, None] = None,
                 context_length: int = 5,
                 truncate_class_names: bool = False,
                 context_feature: str = 'attention',
                 score_concat_index: int = 3,
                 text_head: bool = False,
                 tau: float = 0.07,
                 token_embed_dim: int = 512,
                 text_dim: int = 1024,
                 freeze_text_encoder: bool = True,
                 prompting: str = 'post',
                 cache_text: bool = True,
                 share_text_prefix: bool = True,
                 cuda_graphs: bool = True,
                 neck: Optional[dict] = None,
                 identity_head: Optional[dict] = None,
                 auxiliary_head: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None,
                 **legacy):
        if legacy:
            raise TypeError(f'DenseCLIP got unexpected argument(s) '
                            f'{", ".join(map(repr, sorted(legacy)))}')
        if prompting not in ('post', 'pre'):
            raise ValueError(
                f"prompting must be 'post' or 'pre', got {prompting!r}")
        if context_feature not in ('attention', 'backbone'):
            raise ValueError("context_feature must be 'attention' or "
                             f"'backbone', got {context_feature!r}")
        if pretrained is not None:
            for name, cfg in (('backbone', backbone),
                              ('text_encoder', text_encoder)):
                if cfg.get('pretrained') is not None:
                    raise ValueError(f'both DenseCLIP and its {name} set '
                                     'pretrained; give it once')
                cfg['pretrained'] = pretrained
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.text_encoder = MODELS.build(text_encoder)
        self.context_decoder = MODELS.build(context_decoder)
        self.identity_head = (MODELS.build(identity_head)
                              if identity_head is not None else None)
        self.context_length = context_length
        self.truncate_class_names = truncate_class_names
        self.context_feature = context_feature
        self.score_concat_index = score_concat_index
        self.text_head = text_head
        self.tau = tau
        self.prompting = prompting
        self.cache_text = cache_text
        self.share_text_prefix = share_text_prefix
        self.cuda_graphs = cuda_graphs
        self._text_graphs = CudaGraphedCall('DenseCLIP text encoder')
        self._decoder_graphs = CudaGraphedCall('DenseCLIP context decoder')
        self.freeze_text_encoder = freeze_text_encoder
        if freeze_text_encoder:
            self.text_encoder.requires_grad_(False)

        num_contexts = self.text_encoder.context_length - context_length
        if num_contexts < 0:
            raise ValueError(
                f'text_encoder.context_length '
                f'({self.text_encoder.context_length}) is shorter than the '
                f'class-name context_length ({context_length})')
        self.contexts = nn.Parameter(
            torch.empty(1, num_contexts, token_embed_dim))
        nn.init.trunc_normal_(self.contexts)
        if prompting == 'post':
            self.gamma = nn.Parameter(torch.full((text_dim, ), 1e-4))

        self.class_names: Optional[List[str]] = None
        self.register_buffer('texts', torch.empty(0, context_length,
                                                  dtype=torch.long),
                             persistent=False)
        if class_names is not None:
            self.set_class_names(class_names)
        self._text_cache: Optional[Tuple[tuple, Tensor]] = None

    # ---------------------------------------------------------------- names
    def set_class_names(self, class_names: Union[Sequence[str], str]) -> None:
        """Set (and tokenize once) the class names the text encoder encodes."""
        if isinstance(class_names, str):
            class_names = resolve_class_names(class_names)
        class_names = check_class_names(
            class_names, 'the class list', self.num_classes, 'DenseCLIP',
            names_option='model.class_names',
            count_option='model.decode_head.num_classes')
        self.class_names = class_names
        self.texts = tokenize(class_names, self.context_length,
                              self.truncate_class_names).to(
                                  self.contexts.device)
        self._text_cache = None

    # ------------------------------------------------------------- text side
    def _text_cache_key(self) -> tuple:
        # a parameter's version counter moves on every in-place update
        # (optimizer steps, load_state_dict), so the key catches new weights
        params = [self.contexts, *self.text_encoder.parameters()]
        return (self.texts.data_ptr(), self.texts.shape,
                *((p.data_ptr(), p._version) for p in params))

    def _check_class_names(self) -> None:
        if self.class_names is None:
            raise RuntimeError(
                'DenseCLIP has no class names: set model.class_names in the '
                "config, or add custom_hooks=[dict(type='ClassNamesHook')] to "
                "take them from the dataset's metainfo")

    def text_features(self) -> Tensor:
        """Prompted class features ``[1, K, text_dim]`` before the context decoder.

        In eval mode the result is cached and reused until the contexts, the
        text encoder's weights or the class names change.
        """
        self._check_class_names()
        if self.training:
            self._text_cache = None
            return self._encode_text(self.contexts)
        if not self.cache_text:
            return self._encode_text(self.contexts)
        key = self._text_cache_key()
        if self._text_cache is None or self._text_cache[0] != key:
            with torch.no_grad():
                feats = self._encode_text(self.contexts)
            self._text_cache = (key, feats)
        return self._text_cache[1]

    def _encode_text(self, contexts: Tensor) -> Tensor:
        with float32_region(contexts.device.type):
            path = TextPath(self.text_encoder, self.texts,
                            self.share_text_prefix)
            if self.training and self.cuda_graphs:
                return self._text_graphs(
                    path, contexts.float(),
                    extra_key=(self.texts.data_ptr(), self.texts.shape,
                               self.share_text_prefix))
            return path(contexts.float())

    def _decode_context(self, queries: Tensor, visual_context: Tensor
                        ) -> Tensor:
        """``context_decoder(queries, visual_context)``, in training from
        CUDA graphs where they apply."""
        if self.training and self.cuda_graphs:
            return self._decoder_graphs(self.context_decoder, queries,
                                        visual_context)
        return self.context_decoder(queries, visual_context)

    def train(self, mode: bool = True):
        super().train(mode)
        self._text_cache = None
        return self

    # ----------------------------------------------------------- image side
    def _visual_context(self, stages: List[Tensor], global_feat: Tensor,
                        dense: Tensor) -> Tensor:
        if self.context_feature == 'attention':
            return torch.cat([global_feat[:, None], dense.flatten(2).transpose(
                1, 2)], dim=1)  # [B, 1 + HW, C]
        return stages[-1].flatten(2).transpose(1, 2)  # [B, HW, C4]

    def _prompted_text(self, visual_context: Tensor,
                       text: Optional[Tensor] = None) -> Tensor:
        """Class features ``[B, K, text_dim]`` (float32) prompted with the
        image's context; ``text``: :meth:`text_features`, if already at hand."""
        B = visual_context.shape[0]
        if self.prompting == 'pre':
            self._check_class_names()
            queries = self.contexts.expand(B, -1, -1)
            prompt = self._decode_context(queries, visual_context)
            return self._encode_text(prompt)
        if text is None:
            text = self.text_features()
        text = text.expand(B, -1, -1)
        prompt = self._decode_context(text, visual_context)
        return text + self.gamma * prompt.float()

    def _forward_features(self, inputs: Tensor, text: Optional[Tensor] = None
                          ) -> Tuple[List[Tensor], Tensor, List[Tensor]]:
        """Decode-head inputs, score map ``[B, K, h, w]`` and raw stage maps.

        ``text``: :meth:`text_features`, if already at hand (post-model
        prompting); computed (or taken from the cache) when None.
        """
        x = self.backbone(inputs)
        stages = list(x[:4])
        global_feat, dense = x[4]
        text = self._prompted_text(
            self._visual_context(stages, global_feat, dense), text)
        with float32_region(dense.device.type):
            score_map = torch.einsum('bchw,bkc->bkhw',
                                     F.normalize(dense.float(), dim=1),
                                     F.normalize(text.float(), dim=2))
        feats = list(stages)
        i = self.score_concat_index
        feats[i] = torch.cat([feats[i], score_map], dim=1)
        if self.with_neck:
            feats = list(self.neck(feats))
        if self.text_head:
            feats = [text] + feats
        return feats, score_map, stages

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        return self._forward_features(inputs)[0]

    def inference_text(self) -> Optional[Tensor]:
        """What :meth:`decode_logits` takes as ``text`` at inference: the
        (cached) text features, or None with pre-model prompting."""
        return self.text_features() if self.prompting == 'post' else None

    def decode_logits(self, inputs: Tensor,
                      text: Optional[Tensor] = None) -> Tensor:
        """The decode head's logits at its own resolution: a function of
        tensors only (what ``torch.compile`` compiles, see
        ``denseclip.engine.compiled_inference``)."""
        return self.decode_head.forward(self._forward_features(inputs, text)[0])

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        seg_logits = self.decode_logits(inputs, self.inference_text())
        return self.decode_head.predict_by_feat(seg_logits, batch_img_metas)

    # ------------------------------------------------------------- training
    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        feats, score_map, stages = self._forward_features(inputs)
        losses = self._decode_head_forward_train(feats, data_samples)
        if self.identity_head is not None:
            loss_identity = self.identity_head.loss(score_map / self.tau,
                                                    data_samples,
                                                    self.train_cfg)
            losses.update(add_prefix(loss_identity, 'aux_identity'))
        if self.with_auxiliary_head:
            losses.update(
                self._auxiliary_head_forward_train(stages, data_samples))
        return losses

    # ------------------------------------------------------------ inference
    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference with the crops of all images run in batches.

        ``test_cfg.crop_batch_size`` (default 8) bounds crops per forward.
        Crops never exceed the image, so they all share one size. Each
        batch's logits are added into the image-sized sum as they come, which
        is then divided in place: no full-size copy of all crops' logits.
        """
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        batch_size = self.test_cfg.get('crop_batch_size', 8)
        B, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        boxes = []
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                boxes.append((max(y2 - h_crop, 0), max(x2 - w_crop, 0), y2,
                              x2))
        crops = torch.cat(
            [inputs[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in boxes])
        metas = [dict(batch_img_metas[0], img_shape=crops.shape[2:])]
        preds = inputs.new_zeros((B, self.out_channels, h_img, w_img))
        count = inputs.new_zeros((1, 1, h_img, w_img))
        for y1, x1, y2, x2 in boxes:
            count[:, :, y1:y2, x1:x2] += 1
        for start in range(0, crops.shape[0], batch_size):
            chunk = crops[start:start + batch_size]
            logits = self.encode_decode(chunk, metas * chunk.shape[0])
            for j, crop_logits in enumerate(logits):  # box-major order
                box, b = divmod(start + j, B)
                y1, x1, y2, x2 = boxes[box]
                preds[b, :, y1:y2, x1:x2] += crop_logits
        return preds.div_(count)
