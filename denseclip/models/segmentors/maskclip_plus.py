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

from ...datasets.keep_undistorted import UNDISTORTED_KEY
from ...datasets.mark_unlabeled import UNLABELED_INDEX
from ..clip_constants import CLIP_MEAN, CLIP_STD
from ..losses import head_loss_by_feat
from .separable_loss_segmentor import SeparableLossSegmentorMixin

def teacher_model_cfg(teacher: Union[dict, str]) -> dict:
    """The teacher's model config: given, or the ``model`` of a MaskCLIP config file.

    A relative path is read from the working directory; the configs here
    name their teacher as ``'{{fileDirname}}/../../maskclip/....py'``, which
    mmengine turns into an absolute path.
    """
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

    ``probs`` ``[B, N, H, W]`` are class probabilities over the candidate
    ``classes`` (``[N]`` label indices). Each unlabeled pixel takes the
    candidate of highest probability; where that probability, renormalised
    over the candidates, is below ``conf_thresh`` it is ignored instead.

    Labelled and ignored pixels are left as they are.
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

    The student is a normal ``EncoderDecoder`` (e.g. DeepLabv2 on a
    ResNet-101) whose head is a ``MaskClipPlusHead``: its classifier is the
    teacher's class text embeddings. Pixels the train pipeline marks
    ``unlabeled_index`` (``MarkUnlabeled``) are labelled on the fly:

    * until ``self_train_from``: by the frozen MaskCLIP ``teacher`` run on the
      same augmented batch, argmax over the candidate classes, pixels below
      ``conf_thresh`` ignored;
    * from iteration ``self_train_from`` on (self-training): by the student's
      own predictions (detached), likewise; with ``self_train_agreement``
      only where the teacher gives the same class (elsewhere ignored);
    * when the train pipeline keeps the crop before photometric distortion
      (``KeepUndistortedImage``, packed as ``img_undistorted``), the labels
      are read from that crop, and the student trains on the distorted one.

    Settings:

    * annotation-free (``unseen_classes=None``): every class is a candidate;
      the pipeline marks every class pixel unlabeled.
    * transductive zero-shot (``unseen_classes=[...]``): ground truth is kept
      for the seen classes, only unseen-class pixels (marked by the pipeline)
      get pseudo labels, among the unseen classes. A ground-truth pixel of an
      unseen class reaching training is an error (leakage).

    The teacher is frozen and always in eval mode. It is kept outside the
    module tree: it takes no part in the optimizer, in ``train()``/``eval()``
    switches, in DDP, or in saved checkpoints (it is pure CLIP, rebuilt from
    its CLIP file by ``init_weights``, which the runner calls before training
    and before resuming). Testing needs no teacher.

    Args:
        teacher: a MaskCLIP config file (``configs/maskclip/...py``, its
            ``model`` is the teacher) or a model config: an ``EncoderDecoder``
            with a ``MaskClipHead`` over the same classes (no background).
        unseen_classes: label indices (student's) that get pseudo labels; None
            for all (annotation-free).
        self_train_from: first iteration (1-based) of self-training; -1: never.
        conf_thresh: minimum pseudo-label probability among the candidates.
        self_train_agreement: self-training labels stand only where the
            teacher agrees; a student drifting onto another class's pixels
            gets no label that confirms the drift.
        unlabeled_index: the value ``MarkUnlabeled`` writes.
        teacher_mean, teacher_std: normalisation the teacher expects (CLIP's);
            inputs are re-normalised from the student's data preprocessor.

    With a background embedding in the student head (``bg_embedding=True``)
    the student's class 0 is background and its class ``k + 1`` is the
    teacher's class ``k``.
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
                 **kwargs):
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
        self.teacher.decode_head.load_weights(require=True)
        self.decode_head.set_text_embeddings(
            self.teacher.decode_head.text_embeddings)

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

    @torch.no_grad()
    def teacher_probabilities(self, inputs: Tensor,
                              batch_img_metas: List[dict]) -> Tensor:
        """The frozen teacher's class probabilities ``[B, K_teacher, H, W]``."""
        self.teacher.eval()
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, '_enable_normalize', False):
            inputs = inputs * preprocessor.std + preprocessor.mean
        inputs = (inputs - self.teacher_mean) / self.teacher_std
        output = self.teacher.encode_decode(inputs, batch_img_metas)
        return self.teacher.decode_head.probabilities(output)

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
        seg_logits = self.decode_head.forward(x)
        gt = torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).long()
        self._check_no_leak(gt)
        if (gt == self.unlabeled_index).any():
            metas = [s.metainfo for s in data_samples]
            undistorted = self.undistorted_inputs(inputs, data_samples)
            if undistorted is None:
                gt = self.pseudo_label(gt, inputs, seg_logits, metas)
            else:
                gt = self.pseudo_label(gt, undistorted, None, metas)
        for sample, labels in zip(data_samples, gt):
            sample.gt_sem_seg = PixelData(data=labels[None])
        losses = add_prefix(
            head_loss_by_feat(self.decode_head, seg_logits, data_samples),
            'decode')
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        return losses
