"""A loader batch of images of several sizes, run through a model as groups
of one size each.

mmseg's ``SegDataPreProcessor`` stacks test images without padding them to a
common size and refuses a batch whose images differ ("The image size in a
batch should be the same"); ADE20K's or Pascal VOC's test images have many
sizes after the keep-ratio resize. :func:`split_by_image_size` cuts a batch
(as mmengine's ``pseudo_collate`` makes it: ``dict(inputs=[...],
data_samples=[...])``, or the test-time-augmentation form, ``inputs[aug][i]``)
into sub-batches of images of one size, and :func:`run_in_size_groups` runs
a step (``model.test_step``, ``model.val_step``) on each and puts the
outputs back in the loader's order. Nothing is sorted or dropped: a group
keeps the order its images had in the batch, and every image of a group
goes through the model together, as it would alone (same size, no padding
added), so the predictions equal those of batch size 1.
"""
import contextlib
import logging
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch
from mmengine.logging import MMLogger

__all__ = ['quiet_mixed_original_sizes', 'run_in_size_groups',
           'split_by_image_size']

# what mmseg's EncoderDecoder.inference warns when a batch's ori_shapes differ
MIXED_ORIGINAL_SIZES = 'Image shapes are different in the batch.'

Group = Tuple[List[int], Any]  # (indices in the batch, the sub-batch)


def _is_tta(inputs: Sequence) -> bool:
    """``inputs[aug][i]`` (``TestTimeAug``'s batches) rather than
    ``inputs[i]``."""
    return len(inputs) > 0 and isinstance(inputs[0], (list, tuple))


def _size_key(inputs: Sequence, index: int, tta: bool) -> tuple:
    """What must be equal for two samples to go through the model together:
    the shape of the image (of every augmented view, with TTA)."""
    if tta:
        return tuple(tuple(view[index].shape) for view in inputs)
    return tuple(inputs[index].shape)


def _batch_length(data_batch: Dict[str, Any], tta: bool) -> int:
    inputs = data_batch['inputs']
    return len(inputs[0]) if tta else len(inputs)


def _select(value: Any, key: str, indices: List[int], tta: bool,
            length: int) -> Any:
    """The entries ``indices`` of one field of the batch (per view with
    TTA)."""
    def pick(seq, where):
        if not isinstance(seq, (list, tuple)) or len(seq) != length:
            raise TypeError(
                f'split_by_image_size: data_batch[{key!r}]{where} should be a '
                f'list of {length} entries (one per sample, as '
                f"pseudo_collate gives), got {type(seq).__name__}"
                + (f' of {len(seq)}' if isinstance(seq, (list, tuple))
                   else ''))
        return [seq[i] for i in indices]

    if tta:
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f'split_by_image_size: data_batch[{key!r}] should be a list '
                f'of views (TestTimeAug), got {type(value).__name__}')
        return [pick(view, f'[{a}]') for a, view in enumerate(value)]
    return pick(value, '')


def split_by_image_size(data_batch: Any) -> Optional[List[Group]]:
    """``[(indices, sub_batch), ...]``: the samples of ``data_batch`` grouped
    by image size, groups in the order of their first sample, indices
    ascending; None when the batch needs no split (one size, a stacked
    tensor, or not a dict of per-sample lists, which goes to the model as
    it is).

    ``data_batch``: ``dict(inputs=[C x H x W tensors], data_samples=[...])``
    or, with test-time augmentation, ``inputs[aug][i]`` and
    ``data_samples[aug][i]`` (samples are grouped when all their views match
    in size). Every other field must hold one entry per sample too.
    """
    if not isinstance(data_batch, dict) or 'inputs' not in data_batch:
        return None
    inputs = data_batch['inputs']
    if torch.is_tensor(inputs) or not isinstance(inputs, (list, tuple)):
        return None  # already stacked: one size
    tta = _is_tta(inputs)
    length = _batch_length(data_batch, tta)
    groups: Dict[tuple, List[int]] = {}
    for i in range(length):
        groups.setdefault(_size_key(inputs, i, tta), []).append(i)
    if len(groups) <= 1:
        return None
    return [(indices, {key: _select(value, key, indices, tta, length)
                       for key, value in data_batch.items()})
            for indices in groups.values()]


class _DropMixedOriginalSizes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != MIXED_ORIGINAL_SIZES


@contextlib.contextmanager
def quiet_mixed_original_sizes() -> Iterator[None]:
    """Without mmseg's warning "Image shapes are different in the batch."
    while inside: in a group of one input size it only means that images of
    different original sizes were resized to one size (ADE20K's 375x500 and
    600x800 both become 512x683), and each prediction is still resized to
    its own original size."""
    logger = MMLogger.get_current_instance()
    drop = _DropMixedOriginalSizes()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def run_in_size_groups(step: Callable[[Any], list], data_batch: Any,
                       collect: Optional[Callable[[list], list]] = None
                       ) -> Tuple[list, int]:
    """``step``'s outputs for every sample of ``data_batch`` in the
    batch's order, and the number of ``step`` calls (groups).

    ``step`` runs once per group of one image size
    (:func:`split_by_image_size`); a batch of one size goes to it unchanged.
    ``collect``: applied to each call's outputs before they are placed
    (mmengine's loops strip a trailing loss element there); it must leave
    one output per sample of the group. mmseg's warning about original
    sizes that differ within a batch is not printed
    (:func:`quiet_mixed_original_sizes`).
    """
    groups = split_by_image_size(data_batch)
    with quiet_mixed_original_sizes():
        return _run(step, data_batch, groups, collect)


def _run(step: Callable[[Any], list], data_batch: Any,
         groups: Optional[List[Group]],
         collect: Optional[Callable[[list], list]]) -> Tuple[list, int]:
    if groups is None:
        outputs = step(data_batch)
        return (collect(outputs) if collect else outputs), 1
    placed: List[Any] = [None] * sum(len(idx) for idx, _ in groups)
    for indices, sub_batch in groups:
        outputs = step(sub_batch)
        if collect is not None:
            outputs = collect(outputs)
        if len(outputs) != len(indices):
            raise RuntimeError(
                f'run_in_size_groups: {getattr(step, "__qualname__", step)} '
                f'returned {len(outputs)} outputs for a group of '
                f'{len(indices)} samples; a test/val step must return one '
                'data sample per input')
        for i, output in zip(indices, outputs):
            placed[i] = output
    return placed, len(groups)
