"""Toy images with captions in words, for training a toy CLIP contrastively.

A caption names what was drawn, from the list of shapes the generator drew
(:func:`denseclip.toy.data.draw_toy_scene`): each shape by its colour and form
(``'red disc'``), the background as ``'textured background'``, in a random
order and put into one of CLIP's prompt templates. The class map the generator
also makes is dropped here: nothing derived from it reaches a caption.
"""
from itertools import combinations
from typing import List, Sequence, Tuple

import numpy as np

from ..clip.prompt_templates import TemplatesSpec, get_templates
from .data import TOY_CLASSES, draw_toy_scene

BACKGROUND = TOY_CLASSES[0]


def name_shapes(names: Sequence[str]) -> str:
    """``'red disc'``, ``'red disc and a blue triangle'``,
    ``'red disc, a green square and a blue triangle'`` (the first article
    comes from the template)."""
    names = list(names)
    if not names:
        raise ValueError('name_shapes needs at least one name')
    if len(names) == 1:
        return names[0]
    return ', a '.join(names[:-1]) + ' and a ' + names[-1]


def describe_toy_scene(drawn: Sequence[int],
                       rng: np.random.Generator,
                       templates: Sequence[str],
                       name_background: float = 0.5) -> str:
    """A caption of a toy scene whose shapes of classes ``drawn`` were drawn.

    Each class drawn is named once, in random order; with probability
    ``name_background`` the phrase ends with ``' on a textured background'``.
    A scene without shapes is ``'textured background'``. The phrase fills a
    template chosen at random (``'a photo of a {}.'`` ...).
    """
    names = [TOY_CLASSES[c] for c in dict.fromkeys(drawn)]
    if names:
        rng.shuffle(names)
        phrase = name_shapes(names)
        if rng.random() < name_background:
            phrase += f' on a {BACKGROUND}'
    else:
        phrase = BACKGROUND
    return templates[int(rng.integers(len(templates)))].format(phrase)


def make_captioned_batch(rng: np.random.Generator,
                         batch_size: int,
                         image_size: int,
                         background_only: float = 0.15,
                         name_background: float = 0.5,
                         templates: TemplatesSpec = 'imagenet85'
                         ) -> Tuple[np.ndarray, List[str]]:
    """``batch_size`` square toy images ``[N, S, S, 3]`` (RGB uint8) and their
    captions.

    A fraction ``background_only`` of the images has no shape (caption: the
    background); the others have 1 to 3 shapes, as the segmentation data.
    """
    templates = get_templates(templates)
    images, captions = [], []
    for _ in range(batch_size):
        num_shapes = 0 if rng.random() < background_only else None
        image, _, drawn = draw_toy_scene(rng, (image_size, image_size),
                                         num_shapes)
        images.append(image)
        captions.append(
            describe_toy_scene(drawn, rng, templates, name_background))
    return np.stack(images), captions


def scene_contents() -> List[Tuple[int, ...]]:
    """Every set of shape classes a scene can hold: ``()`` (background only)
    and each non-empty subset of the shape classes, in class order."""
    shapes = range(1, len(TOY_CLASSES))
    return [c for n in range(len(TOY_CLASSES)) for c in combinations(shapes, n)]


def content_caption(content: Sequence[int],
                    template: str = 'a photo of a {}.') -> str:
    """The caption of a set of shape classes, names in class order."""
    if not content:
        return template.format(BACKGROUND)
    return template.format(name_shapes([TOY_CLASSES[c] for c in content]))
