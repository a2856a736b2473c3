"""``denseclip.clip`` (CLIP itself) apart from ``denseclip.models`` (the
methods): imports run one way, and the module paths from before the split
still import, as the very modules that now hold the code (issue 18)."""
import ast
import importlib
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest

import denseclip
from denseclip.moved_modules import MOVED_MODULES

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP_DIR = REPO_ROOT / 'denseclip' / 'clip'

# old path -> new path, written out here rather than read from the table, so
# that an entry dropped from MOVED_MODULES fails this test
OLD_PATHS = {
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
    'denseclip.models.text.prompt_class_names':
    'denseclip.clip.prompt_class_names',
    'denseclip.models.text.prompt_templates': 'denseclip.clip.prompt_templates',
    'denseclip.models.text.clip_text_encoder': 'denseclip.clip.text_tower',
    'denseclip.models.text.zero_shot': 'denseclip.clip.zero_shot',
    'denseclip.models.text.text_embedding_cache': 'denseclip.clip.text_cache',
    'denseclip.models.text.text_embedding_file':
    'denseclip.clip.text_embedding_file',
}


def _imported_modules(path: Path) -> set:
    """Every module ``path`` imports, relative imports made absolute."""
    package = 'denseclip.clip'
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit('.', node.level - 1)[0] if node.level \
                else ''
            module = '.'.join(p for p in (base, node.module) if p)
            found.add(module)
            # ``from .. import models`` names a module too
            found |= {f'{module}.{alias.name}' for alias in node.names}
    return found


def test_clip_imports_nothing_of_the_methods():
    files = sorted(CLIP_DIR.glob('*.py'))
    assert len(files) > 10, files
    allowed = ('denseclip.clip', 'denseclip.utils')
    wrong = {
        f'{path.name}: {module}'
        for path in files for module in _imported_modules(path)
        if module.split('.')[0] == 'denseclip'
        and not module.startswith(allowed)}
    assert not wrong, ('denseclip/clip/ may import only denseclip.clip and '
                       f'denseclip.utils: {sorted(wrong)}')


def test_import_reader_sees_relative_imports(tmp_path):
    """The walker above would catch a ``from ..models`` import."""
    probe = tmp_path / 'probe.py'
    probe.write_text('from ..models.heads import MaskClipHead\n'
                     'from .. import models\nfrom .files import get\n')
    assert _imported_modules(probe) == {
        'denseclip.models.heads', 'denseclip.models.heads.MaskClipHead',
        'denseclip', 'denseclip.models', 'denseclip.clip.files',
        'denseclip.clip.files.get'}


@pytest.mark.parametrize('old', sorted(OLD_PATHS))
def test_old_path_is_the_new_module(old):
    new = importlib.import_module(OLD_PATHS[old])
    assert importlib.import_module(old) is new
    assert MOVED_MODULES[old] == OLD_PATHS[old]
    # no file left under the old name to hide behind the alias
    old_file = REPO_ROOT.joinpath(*old.split('.')).with_suffix('.py')
    assert not old_file.exists(), old_file
    assert osp.isfile(new.__file__)


def test_table_lists_only_these_paths():
    assert MOVED_MODULES == OLD_PATHS


def test_old_package_names_are_the_new_objects():
    from denseclip.clip import ClassNames, CLIPTextTower, tokenize
    from denseclip.models import text
    assert text.ClassNames is ClassNames
    assert text.CLIPTextTower is CLIPTextTower
    assert text.tokenize is tokenize  # the function, as before the move
    assert denseclip.models.ClassNames is ClassNames


def test_registered_names_unchanged():
    from mmseg.registry import MODELS

    from denseclip.clip.text_tower import CLIPTextTower
    assert MODELS.get('CLIPTextTower') is CLIPTextTower


@pytest.mark.integration
def test_old_path_first_in_a_fresh_interpreter():
    """A config's ``custom_imports`` of an old path, before anything else."""
    code = ('from mmengine.utils import import_modules_from_strings\n'
            'old, = import_modules_from_strings('
            "['denseclip.models.text.class_names'])\n"
            'import denseclip.clip.class_names as new\n'
            'assert old is new, (old, new)\n'
            'import denseclip.clip_files\n'
            'assert denseclip.clip_files.get is denseclip.clip.files.get\n')
    done = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
