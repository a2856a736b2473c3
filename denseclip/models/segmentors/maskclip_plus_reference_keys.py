"""The MaskCLIP reference's MaskCLIP+ checkpoints (mmseg 0.x) in our layout.

Its ``decode_head`` holds the teacher (``clip.*`` and the projections), the
student (``decode_module.*``, named as ours), the class embeddings and an
iteration counter; ours keeps the teacher outside the model and the
embeddings in the student's classifier (docs/maskclip_plus.md).
"""
from typing import Dict, Optional

import torch

# the teacher's entries under decode_head: the CLIP image encoder and its
# attention-pool (ResNet) or output (ViT) projections
TEACHER_MODULES = ('clip', 'q_proj', 'k_proj', 'v_proj', 'c_proj', 'proj')
# the reference's name under decode_head -> ours
RENAMED = {
    'text_embeddings': 'decode_module.conv_seg.text_embeddings',
    'bg_embeddings': 'decode_module.conv_seg.bg_embedding',
}
COUNTER = '_iter_counter'


def is_reference_layout(state_dict: Dict, prefix: str = '') -> bool:
    """Does ``state_dict`` hold a reference MaskCLIP+ model at ``prefix``?"""
    head = prefix + 'decode_head.'
    return (head + COUNTER) in state_dict or (head + 'text_embeddings') \
        in state_dict


def from_reference_layout(state_dict: Dict, prefix: str = '') -> Optional[int]:
    """Convert a reference MaskCLIP+ state dict at ``prefix`` in place.

    Drops the teacher's entries and the iteration counter (the reference
    resets it when training from a file), moves the text and background
    embeddings into the student's classifier and starts our iteration count
    at 0. Returns the number of teacher entries dropped, or None (and leaves
    ``state_dict`` as it is) when it is not in the reference's layout.
    """
    if not is_reference_layout(state_dict, prefix):
        return None
    head = prefix + 'decode_head.'
    teacher = [
        key for key in state_dict if key.startswith(head)
        and key[len(head):].split('.', 1)[0] in TEACHER_MODULES
    ]
    for key in teacher:
        del state_dict[key]
    state_dict.pop(head + COUNTER, None)
    for old, new in RENAMED.items():
        if head + old in state_dict:
            state_dict[head + new] = state_dict.pop(head + old)
    state_dict.setdefault(prefix + 'train_iter',
                          torch.zeros((), dtype=torch.long))
    return len(teacher)
