"""The old paths of modules that moved, each an alias of its new home.

Issue 18 gave CLIP its own package, ``denseclip.clip``. Configs
(``custom_imports``), user code and pickles may still name a module by its
old path; :func:`alias_moved_modules` (run by ``import denseclip``) makes
each old path the very module that now holds the code, so imports,
``isinstance`` checks and monkeypatches agree. Code in this repository
imports the new paths only.
"""
import importlib
import sys
from typing import Dict

MOVED_MODULES: Dict[str, str] = {
    'denseclip.clip_files': 'denseclip.clip.files',
    'denseclip.clip_io': 'denseclip.clip.checkpoint',
    'denseclip.models.clip_arch': 'denseclip.clip.arch',
    'denseclip.models.clip_constants': 'denseclip.clip.normalization',
    'denseclip.models.clip_tower': 'denseclip.clip.tower',
    'denseclip.models.weights_guard': 'denseclip.clip.weights_guard',
    'denseclip.models.legacy_args': 'denseclip.utils.legacy_args',
    'denseclip.models.layers.attention_heads': 'denseclip.clip.attention_heads',
    'denseclip.models.layers.clip_transformer': 'denseclip.clip.transformer',
    'denseclip.models.layers.pos_embed': 'denseclip.clip.pos_embed',
    'denseclip.models.text.tokenize': 'denseclip.clip.tokenizer',
    'denseclip.models.text.class_names': 'denseclip.clip.class_names',
    'denseclip.models.text.prompt_class_names': 'denseclip.clip.prompt_class_names',
    'denseclip.models.text.prompt_templates': 'denseclip.clip.prompt_templates',
    'denseclip.models.text.clip_text_encoder': 'denseclip.clip.text_tower',
    'denseclip.models.text.zero_shot': 'denseclip.clip.zero_shot',
    'denseclip.models.text.text_embedding_cache': 'denseclip.clip.text_cache',
    'denseclip.models.text.text_embedding_file': 'denseclip.clip.text_embedding_file',
}


def alias_moved_modules() -> None:
    """Register every old path in ``sys.modules`` as its new module."""
    for old, new in MOVED_MODULES.items():
        module = importlib.import_module(new)
        sys.modules.setdefault(old, module)
        parent, _, child = old.rpartition('.')
        # ``denseclip.models.text.tokenize`` stays the function it always was
        if not hasattr(sys.modules[parent], child):
            setattr(sys.modules[parent], child, module)
