"""CLIP itself: its files, reading them, its towers' parts and its text side.

What knows CLIP's weights, layouts or text lives here; the methods built on
it live in ``denseclip.models`` and import from here, never the other way
(``tests/test_clip_wing.py``).
"""
from .class_names import ClassNames
from .text_tower import CLIPTextTower
from .tokenizer import tokenize

__all__ = ['CLIPTextTower', 'ClassNames', 'tokenize']
