"""MaskCLIP+ (Zhou et al., ECCV 2022): a segmentation network trained on MaskCLIP's pseudo labels."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor

from ...clip.normalization import CLIP_MEAN, CLIP_STD
from ...datasets.keep_undistorted import UNDISTORTED_KEY
from ...datasets.mark_unlabeled import UNLABELED_INDEX
from ..losses import head_loss_by_feat
from .maskclip_plus_reference_keys import from_reference_layout
from .separable_loss_segmentor import SeparableLossSegmentorMixin

def teacher_model_cfg(teacher: Union[dict, str]) -> dict:
    """The teacher's model config: given, or the ``model`` of a MaskCLIP
    config file (a relative path is read from the working directory)."""
    if not isinstance(teacher, str):
        return teacher
    if not osp.isfile(teacher):
        raise FileNotFoundError(
            f'MaskClipPlus: teacher config {teacher} does not exist (a '
            f'relative path is read from the working directory, '
            f'{osp.abspath(".")})')
    return Config.fromfile(teacher).model


def assign_pseudo_labels(gt: Tensor,
                         probs: Tensor,
                         classes: Tensor,
                         unlabeled_index: int = UNLABELED_INDEX,
                         ignore_index: int = 255,
                         conf_thresh: float = 0.) -> Tensor:
    """Fill the ``unlabeled_index`` pixels of ``gt`` ``[B, H, W]`` with pseudo labels.

    Each takes the most probable of the candidate ``classes`` (``probs``
    ``[B, N, H, W]`` over them), or ``ignore_index`` where that probability,
    renormalised over the candidates, is below ``conf_thresh``.
    """
    probs = probs.clamp_min(0)
    probs = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
    conf, idx = probs.max(dim=1)
    labels = classes.to(gt.device)[idx].to(gt.dtype)
    if conf_thresh > 0:
        labels = labels.masked_fill(conf < conf_thresh, ignore_index)
    return torch.where(gt == unlabeled_index, labels, gt)


@MODELS.register_module()
class MaskClipPlus(SeparableLossSegmentorMixin, EncoderDecoder):
    """Train an mmseg segmentation network on MaskCLIP's predictions.

    The student is an ``EncoderDecoder`` with a ``MaskClipPlusHead``. The
    pixels the pipeline marks ``unlabeled_index`` (``MarkUnlabeled``) get
    pseudo labels from the frozen MaskCLIP ``teacher`` (from
    ``self_train_from`` on, from the student itself), or with ``distill``
    none: the student's features learn CLIP's dense features instead. The
    teacher is kept outside the module tree (not optimised, not saved; rebuilt
    from its CLIP file by ``init_weights``). docs/maskclip_plus.md has the
    details and the settings.

    Args:
        teacher: a MaskCLIP config file or model config over the same
            classes (the student may add a background embedding as class 0).
        unseen_classes: student labels that get pseudo labels (zero-shot);
            None: all (annotation-free).
        self_train_from: first iteration (1-based) of self-training; -1: never.
        conf_thresh: minimum pseudo-label probability among the candidates.
        self_train_agreement: self-training labels only where the teacher
            agrees.
        unlabeled_index: the value ``MarkUnlabeled`` writes.
        teacher_mean, teacher_std: the teacher's input normalisation.
        distill: feature distillation instead of pseudo labels.
        distill_weight: weight of the distillation loss.
        distill_labeled: distil on every pixel that is not ignored; False:
            only on the unlabeled ones.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 teacher: Union[dict, str],
                 unseen_classes: Optional[Sequence[int]] = None,
                 self_train_from: int = -1,
                 conf_thresh: float = 0.,
                 self_train_agreement: bool = False,
                 unlabeled_index: int = UNLABELED_INDEX,
                 teacher_mean: Sequence[float] = CLIP_MEAN,
                 teacher_std: Sequence[float] = CLIP_STD,
                 distill: bool = False,
                 distill_weight: float = 1.,
                 distill_labeled: bool = True,
                 **kwargs):
        if distill and self_train_from >= 0:
            raise ValueError(
                f'MaskClipPlus: distill=True replaces pseudo labels, '
                f'self-training included; set self_train_from=-1 (got '
                f'{self_train_from})')
        super().__init__(backbone=backbone, decode_head=decode_head, **kwargs)
        teacher_model = MODELS.build(teacher_model_cfg(teacher))
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        # a plain attribute, not a submodule (see the class docstring)
        object.__setattr__(self, 'teacher', teacher_model)

        offset = self.num_classes - self.teacher.num_classes
        if offset not in (0, 1):
            raise ValueError(
                f'MaskClipPlus: the student has {self.num_classes} classes and '
                f'the teacher {self.teacher.num_classes}; they must be equal, '
                f'or the student has one more (background embedding)')
        self.teacher_offset = offset
        if unseen_classes is None:
            unseen_classes = range(offset, self.num_classes)
        unseen = sorted(set(int(c) for c in unseen_classes))
        if not unseen or unseen[0] < offset or unseen[-1] >= self.num_classes:
            raise ValueError(
                f'MaskClipPlus: unseen_classes {unseen} must be classes the '
                f'teacher knows, in [{offset}, {self.num_classes})')
        self.register_buffer('unseen_classes', torch.tensor(unseen),
                             persistent=False)
        self.self_train_from = self_train_from
        self.conf_thresh = conf_thresh
        self.self_train_agreement = self_train_agreement
        self.unlabeled_index = unlabeled_index
        self.register_buffer('teacher_mean',
                             torch.tensor(teacher_mean).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer('teacher_std',
                             torch.tensor(teacher_std).view(1, -1, 1, 1),
                             persistent=False)
        self.distill = distill
        self.distill_weight = distill_weight
        self.distill_labeled = distill_labeled
        # training iterations seen, saved with the model so resuming keeps it
        self.register_buffer('train_iter', torch.zeros((), dtype=torch.long))

    # ---------------------------------------------------------------- names
    @property
    def class_names(self) -> Optional[List[str]]:
        """The teacher's class names (``ClassNamesHook`` fills them if None)."""
        return self.teacher.decode_head.class_names

    def set_class_names(self, class_names: Sequence[str]) -> None:
        names = list(class_names)[self.teacher_offset:]
        self.teacher.decode_head.set_class_names(names)

    def _class_name(self, label: int) -> str:
        names = self.class_names
        k = label - self.teacher_offset
        if names and 0 <= k < len(names):
            return names[k]
        return 'background' if k < 0 else '?'

    # -------------------------------------------------------------- weights
    def init_weights(self) -> None:
        """Initialise the student, load the teacher's CLIP weights and give
        the student the teacher's class text embeddings."""
        super().init_weights()
        self.teacher.init_weights()
        head = self.teacher.decode_head
        head.load_weights(require=True)
        if head.text_embeddings.shape[0] != head.num_classes:
            raise ValueError(
                f'MaskClipPlus: the student classifies with one text '
                f'embedding per class, but the teacher\'s class names give '
                f'{head.text_embeddings.shape[0]} names for '
                f'{head.num_classes} classes (synonyms); give the teacher one '
                f'name per class')
        self.decode_head.set_text_embeddings(head.text_embeddings)

    def _apply(self, fn, *args, **kwargs):
        # device and dtype moves reach the teacher too
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    # ------------------------------------------------------------- training
    @property
    def self_training(self) -> bool:
        return 0 <= self.self_train_from <= int(self.train_iter)

    def _check_no_leak(self, gt: Tensor) -> None:
        leaked = gt[torch.isin(gt, self.unseen_classes.to(gt))].unique()
        if leaked.numel():
            label = int(leaked[0])
            raise RuntimeError(
                f'MaskClipPlus: ground truth of class {label} '
                f'({self._class_name(label)!r}) reached training, but it is '
                f'to be learnt from pseudo labels only (unseen_classes='
                f'{self.unseen_classes.tolist()}). Put MarkUnlabeled(classes='
                f'{self.unseen_classes.tolist()}) right after LoadAnnotations '
                f'in the train pipeline.')

    def _teacher_inputs(self, inputs: Tensor) -> Tensor:
        """``inputs`` re-normalised from the student's preprocessing to the
        teacher's."""
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, '_enable_normalize', False):
            inputs = inputs * preprocessor.std + preprocessor.mean
        return (inputs - self.teacher_mean) / self.teacher_std

    @torch.no_grad()
    def teacher_probabilities(self, inputs: Tensor,
                              batch_img_metas: List[dict]) -> Tensor:
        """The frozen teacher's class probabilities ``[B, K_teacher, H, W]``."""
        self.teacher.eval()
        output = self.teacher.encode_decode(self._teacher_inputs(inputs),
                                            batch_img_metas)
        return self.teacher.decode_head.probabilities(output)

    @torch.no_grad()
    def teacher_features(self, inputs: Tensor) -> Tensor:
        """CLIP's dense features (MaskCLIP's, before the classifier),
        L2-normalised over channels: ``[B, C, h, w]``."""
        self.teacher.eval()
        head = self.teacher.decode_head
        head.load_weights(require=True)
        feats = self.teacher.extract_feat(self._teacher_inputs(inputs))
        dense, _ = head.dense_features(head._transform_inputs(feats))
        return F.normalize(dense, dim=1)

    def distill_loss(self, feat: Tensor, gt: Tensor,
                     inputs: Tensor) -> Tensor:
        """L1 between the student's features ``feat`` (the classifier's
        input) and the teacher's, both resized to the labels ``gt``
        ``[B, H, W]``, over the pixels that are not ignored
        (``distill_labeled``) or only the unlabeled ones."""
        size = gt.shape[1:]
        target = resize(self.teacher_features(inputs), size=size,
                        mode='bilinear', align_corners=self.align_corners)
        feat = resize(feat, size=size, mode='bilinear',
                      align_corners=self.align_corners)
        if self.distill_labeled:
            mask = gt != self.decode_head.ignore_index
        else:
            mask = gt == self.unlabeled_index
        if not mask.any():
            return feat.sum() * 0.
        feat = feat.permute(0, 2, 3, 1)[mask]
        target = target.permute(0, 2, 3, 1)[mask].to(feat.dtype)
        return F.l1_loss(feat, target) * self.distill_weight

    def pseudo_label(self, gt: Tensor, inputs: Tensor,
                     seg_logits: Optional[Tensor],
                     batch_img_metas: List[dict]) -> Tensor:
        """Fill the unlabeled pixels of ``gt`` ``[B, H, W]`` (teacher or self).

        ``inputs`` is the batch the labels are read from, ``seg_logits`` the
        student's logits on it (None: computed here, without gradients).
        """
        if self.self_training:
            if seg_logits is None:
                with torch.no_grad():
                    seg_logits = self.decode_head.forward(
                        self.extract_feat(inputs))
            probs = F.softmax(
                resize(seg_logits.detach(), size=gt.shape[1:],
                       mode='bilinear', align_corners=self.align_corners),
                dim=1)[:, self.unseen_classes]
            labels = self._assign(gt, probs)
            if self.self_train_agreement:
                teacher = self._assign(
                    gt, self._teacher_candidate_probs(gt, inputs,
                                                      batch_img_metas))
                labels = torch.where(
                    labels == teacher, labels,
                    torch.full_like(labels, self.decode_head.ignore_index))
                labels = torch.where(gt == self.unlabeled_index, labels, gt)
            return labels
        return self._assign(
            gt, self._teacher_candidate_probs(gt, inputs, batch_img_metas))

    def _teacher_candidate_probs(self, gt: Tensor, inputs: Tensor,
                                 batch_img_metas: List[dict]) -> Tensor:
        probs = self.teacher_probabilities(inputs, batch_img_metas)
        probs = resize(probs, size=gt.shape[1:], mode='bilinear',
                       align_corners=self.align_corners)
        return probs[:, self.unseen_classes - self.teacher_offset]

    def _assign(self, gt: Tensor, probs: Tensor) -> Tensor:
        return assign_pseudo_labels(gt, probs, self.unseen_classes,
                                    self.unlabeled_index,
                                    self.decode_head.ignore_index,
                                    self.conf_thresh)

    def undistorted_inputs(self, inputs: Tensor,
                           data_samples) -> Optional[Tensor]:
        """The batch before photometric distortion, preprocessed as ``inputs``.

        From the ``img_undistorted`` crops that ``KeepUndistortedImage`` put in
        the samples' metainfo (None when there are none): channel order,
        normalisation and padding of the student's data preprocessor.
        """
        images = [s.metainfo.get(UNDISTORTED_KEY) for s in data_samples]
        if all(img is None for img in images):
            return None
        if any(img is None for img in images):
            raise RuntimeError(
                f'MaskClipPlus: some samples of the batch carry '
                f'{UNDISTORTED_KEY} and some do not; every train sample must '
                f'pass KeepUndistortedImage')
        pre = self.data_preprocessor
        views = []
        for img in images:
            view = torch.from_numpy(np.ascontiguousarray(img))
            view = view[None] if view.ndim == 2 else view.permute(2, 0, 1)
            view = view.to(inputs.device, inputs.dtype)
            if getattr(pre, 'channel_conversion', False) and \
                    view.shape[0] == 3:
                view = view[[2, 1, 0]]
            if getattr(pre, '_enable_normalize', False):
                view = (view - pre.mean) / pre.std
            height, width = view.shape[-2:]
            if height > inputs.shape[-2] or width > inputs.shape[-1]:
                raise RuntimeError(
                    f'MaskClipPlus: the {UNDISTORTED_KEY} crop is '
                    f'{height}x{width}, larger than the batch '
                    f'{tuple(inputs.shape[-2:])}: put KeepUndistortedImage '
                    f'after every transform that resizes or crops')
            views.append(F.pad(view, (0, inputs.shape[-1] - width, 0,
                                      inputs.shape[-2] - height),
                               value=getattr(pre, 'pad_val', 0)))
        return torch.stack(views)

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        self.train_iter += 1
        if int(self.train_iter) == self.self_train_from:
            print_log(f'MaskClipPlus: self-training from iteration '
                      f'{self.self_train_from} on', logger='current')
        x = self.extract_feat(inputs)
        if self.distill:
            seg_logits, feat = self.decode_head.forward_with_features(x)
        else:
            seg_logits = self.decode_head.forward(x)
        gt = torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).long()
        self._check_no_leak(gt)
        extra = {}
        if self.distill:
            extra['loss_distill'] = self.distill_loss(feat, gt, inputs)
            gt = gt.masked_fill(gt == self.unlabeled_index,
                                self.decode_head.ignore_index)
        elif (gt == self.unlabeled_index).any():
            metas = [s.metainfo for s in data_samples]
            undistorted = self.undistorted_inputs(inputs, data_samples)
            if undistorted is None:
                gt = self.pseudo_label(gt, inputs, seg_logits, metas)
            else:
                gt = self.pseudo_label(gt, undistorted, None, metas)
        for sample, labels in zip(data_samples, gt):
            sample.gt_sem_seg = PixelData(data=labels[None])
        losses = head_loss_by_feat(self.decode_head, seg_logits, data_samples)
        losses = add_prefix({**losses, **extra}, 'decode')
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        return losses

    # ---------------------------------------------------------- checkpoints
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the reference's released files (maskclip_plus_reference_keys)
        dropped = from_reference_layout(state_dict, prefix)
        if dropped is not None:
            print_log(
                f'MaskClipPlus: a checkpoint in the MaskCLIP reference\'s '
                f'layout: dropped its {dropped} teacher entries '
                f'(decode_head.clip.*, its projections), as the teacher is '
                f'not part of this model (init_weights rebuilds it from its '
                f'CLIP file); decode_head.text_embeddings / bg_embeddings '
                f'went to the student\'s classifier, _iter_counter ignored',
                logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def convert_state_dict(self, state_dict: Dict) -> Dict:
        """``state_dict`` with the keys this model loads from it (a copy):
        what ``CheckpointFitHook`` compares with the model."""
        converted = dict(state_dict)
        from_reference_layout(converted)
        return converted
