"""Prompt templates for zero-shot class text embeddings (MaskCLIP).

``'imagenet85'`` is the set of the MaskCLIP paper and its reference
``tools/maskclip_utils/prompt_engineering.py``: CLIP's 80 ImageNet templates,
which mmseg ships as ``get_predefined_templates('imagenet')`` (the same 80
strings in the same order as the reference's first 80), followed by 5
scene-level ones; ``'imagenet80'`` is those 80 alone (SCLIP, ClearCLIP,
NACLIP). ``'single'`` is the reference's ``--no-prompt-eng`` prompt.
"""
from typing import List, Sequence, Union

from mmseg.utils import get_predefined_templates

# The reference's last five templates (its prompt_templates[80:]).
SCENE_TEMPLATES = (
    'there is a {} in the scene.',
    'there is the {} in the scene.',
    'this is a {} in the scene.',
    'this is the {} in the scene.',
    'this is one {} in the scene.',
)
SINGLE_TEMPLATE = 'a photo of a {}.'

TemplatesSpec = Union[str, Sequence[str]]


def get_templates(templates: TemplatesSpec) -> List[str]:
    """The template strings of a named set, or the given ones checked.

    Names: ``'imagenet85'`` (the MaskCLIP paper's 85), ``'imagenet80'``
    (CLIP's 80 ImageNet templates, the successors'), ``'single'``
    (``'a photo of a {}.'``), or any of mmseg's predefined sets
    (``'imagenet'``: 80, ``'vild'``). A list is taken as the templates; each
    must contain ``{}`` exactly once.
    """
    if isinstance(templates, str):
        if templates == 'imagenet85':
            result = list(get_predefined_templates('imagenet')) + list(
                SCENE_TEMPLATES)
        elif templates == 'imagenet80':  # CLIP's own, as SCLIP/NACLIP use
            result = list(get_predefined_templates('imagenet'))
        elif templates == 'single':
            result = [SINGLE_TEMPLATE]
        else:
            try:
                result = list(get_predefined_templates(templates))
            except ValueError:
                raise ValueError(
                    f"unknown template set {templates!r}: use 'imagenet85', "
                    f"'imagenet80', 'single', one of mmseg's sets "
                    f"('imagenet', 'vild') or a list of templates with "
                    f"'{{}}'") from None
    else:
        result = [str(t) for t in templates]
    if not result:
        raise ValueError('no prompt templates given')
    for template in result:
        if template.count('{}') != 1:
            raise ValueError(f"prompt template {template!r} must contain '{{}}' "
                             f'exactly once (where the class name goes)')
    return result
