"""SC-CLIP's multi-level feature fusion (Bai et al.): the outputs of a run
of intermediate blocks, summed, go through the last block's (self-adjusted)
attention a second time, and that is added to the last block's own output,
so that the detail of the middle layers reaches the dense features without
their weaker semantics replacing the last layer's."""
from typing import Dict, Tuple

from torch import Tensor


def sum_of_levels(intermediates: Dict[int, Tensor],
                  layers: Tuple[int, int]) -> Tensor:
    """The sum of the outputs of blocks ``start .. end - 1`` (``layers``
    is ``(start, end)``, block indices from 0), in that order."""
    start, end = layers
    missing = [i for i in range(start, end) if i not in intermediates]
    if missing:
        raise KeyError(f'multi-level fusion: no output of blocks {missing} '
                       f'(have {sorted(intermediates)})')
    return sum(intermediates[i] for i in range(start, end))
