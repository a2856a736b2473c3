"""Reading a ``[K, C]`` class text-embedding file (the reference's format).

``tools/prompt_engineering.py`` writes one, as the reference MaskCLIP's
``prompt_engineering.py`` does: a tensor with one row per class. Both
MaskCLIP heads read it here, with the same checks and messages.
"""
from typing import Optional

import torch
from torch import Tensor

from .checkpoint import CLIPCheckpointError


class TextEmbeddingFileError(CLIPCheckpointError):
    """A text-embedding file that cannot be read or does not fit the model."""


def read_text_embeddings(path: str,
                         num_classes: Optional[int] = None,
                         channels: Optional[int] = None,
                         owner: str = 'the head') -> Tensor:
    """The ``[K, C]`` float tensor in ``path``, checked against the model.

    A missing file, something other than a 2-D tensor, or a class count /
    width other than ``num_classes`` / ``channels`` is an error naming the
    file and both shapes.
    """
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'text embedding file {path} does not exist; write it with '
            f'`python tools/prompt_engineering.py`, or give clip_pretrained '
            f'and class_names instead') from None
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise TextEmbeddingFileError(
            f'{path} is not a text embedding file ({type(err).__name__}: '
            f'{err})') from err
    if not isinstance(loaded, Tensor) or loaded.dim() != 2:
        got = (tuple(loaded.shape) if isinstance(loaded, Tensor) else
               type(loaded).__name__)
        raise TextEmbeddingFileError(
            f'{path} is not a text embedding file: expected a [K, C] tensor, '
            f'got {got}')
    K, C = loaded.shape
    if num_classes is not None and K != num_classes:
        raise TextEmbeddingFileError(
            f'{path} holds {K} class embeddings but {owner} has {num_classes} '
            f'text classes')
    if channels is not None and C != channels:
        raise TextEmbeddingFileError(
            f'{path} holds embeddings of width {C} but {owner} has '
            f'text_channels={channels}; is it the file of another CLIP model?')
    return loaded.float()
