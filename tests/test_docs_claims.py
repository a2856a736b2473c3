"""The facts in README.md and docs/ that can drift from the code: the
license, the citation file, the Python floor, every config and tool the docs
name, the datasets the training-free configs read, and the published
numbers the model zoo copies."""
import ast
import glob
import os.path as osp
import re
import sys

import mmseg
import pytest
import yaml
from denseclip_helpers import load_tool
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = ['README.md', 'pretrained/README.md',
        'configs/ovss/class_names/README.md'] + sorted(
            osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs',
                                                             '*.md')))
# mmseg's own tools (its converters) live inside the installed package
MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
# paths the docs name as another repository's files, not this one's
OTHER_REPOS = {'configs/base_config.py'}  # ClearCLIP's / NACLIP's config
CONFIG = re.compile(r'(?<![\w/.-])(?:\.\./)*(configs/[\w./-]+?\.py)\b')
TOOL = re.compile(r'(?<![\w/.$-])(?:\.\./)*(tools/[\w/-]+\.(?:py|sh))\b')
MMSEG_TOOL = re.compile(r'\$MMSEG_TOOLS/([\w/-]+\.py)')


def read(path: str) -> str:
    with open(osp.join(ROOT, path), encoding='utf-8') as f:
        return f.read()


def setup_keywords() -> dict:
    """The literal keyword arguments of setup.py's ``setup(...)`` call."""
    tree = ast.parse(read('setup.py'))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id',
                                                  '') == 'setup':
            return {k.arg: k.value.value for k in node.keywords
                    if isinstance(k.value, ast.Constant)}
    raise AssertionError('setup.py has no setup(...) call')


def test_license_is_the_apache_text_setup_py_names():
    text = read('LICENSE')
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text
    assert setup_keywords()['license'] == 'Apache License 2.0'
    assert yaml.safe_load(read('CITATION.cff'))['license'] == 'Apache-2.0'


def test_citation_file_parses_and_cites_the_papers():
    cff = yaml.safe_load(read('CITATION.cff'))
    for key in ('cff-version', 'message', 'title', 'authors', 'license',
                'version', 'references'):
        assert key in cff, key
    namespace: dict = {}
    exec(read('denseclip/version.py'), namespace)
    assert cff['version'] == namespace['__version__']
    refs = {r['title']: r for r in cff['references']}
    wanted = {  # title -> (first author's family name, year)
        'DenseCLIP: Language-Guided Dense Prediction with Context-Aware '
        'Prompting': ('Rao', 2022),
        'Extract Free Dense Labels from CLIP': ('Zhou', 2022),
        'Learning Transferable Visual Models From Natural Language '
        'Supervision': ('Radford', 2021),
        'SCLIP: Rethinking Self-Attention for Dense Vision-Language '
        'Inference': ('Wang', 2024),
        'ClearCLIP: Decomposing CLIP Representations for Dense '
        'Vision-Language Inference': ('Lan', 2024),
        'Pay Attention to Your Neighbours: Training-Free Open-Vocabulary '
        'Semantic Segmentation': ('Hajimiri', 2025),
        'Single-Stage Semantic Segmentation from Image Labels':
        ('Araslanov', 2020),
        'Self-Calibrated CLIP for Training-Free Open-Vocabulary '
        'Segmentation': ('Bai', 2024),
        'ProxyCLIP: Proxy Attention Improves CLIP for Open-Vocabulary '
        'Segmentation': ('Lan', 2024),
        'Emerging Properties in Self-Supervised Vision Transformers':
        ('Caron', 2021),
        'DINOv2: Learning Robust Visual Features without Supervision':
        ('Oquab', 2024),
    }
    assert set(refs) == set(wanted)
    for title, (author, year) in wanted.items():
        ref = refs[title]
        assert ref['year'] == year, title
        assert ref['authors'][0]['family-names'] == author, title
        # a conference paper names its proceedings; a preprint its archive
        where = {'conference-paper': 'collection-title', 'article': 'journal'}
        assert ref[where[ref['type']]], title


def test_the_python_floor_is_one_figure_and_this_interpreter_meets_it():
    required = setup_keywords()['python_requires']
    match = re.fullmatch(r'>=(\d+)\.(\d+)', required)
    assert match, required
    floor = (int(match[1]), int(match[2]))
    readme = read('README.md')
    stated = set(re.findall(r'Python >= (\d+\.\d+)', readme))
    assert stated == {f'{floor[0]}.{floor[1]}'}, stated
    assert f'sys.version_info < {floor}' in read('tools/install.sh')
    # CI runs the suite with the venv's interpreter (Python 3.11.7 there)
    assert sys.version_info[:2] >= floor, sys.version


@pytest.mark.parametrize('doc', DOCS)
def test_every_config_and_tool_a_doc_names_exists(doc):
    text = read(doc)
    configs = set(CONFIG.findall(text)) - OTHER_REPOS
    missing = [c for c in configs if not osp.isfile(osp.join(ROOT, c))]
    assert not missing, f'{doc} names configs that do not exist: {missing}'
    tools = set(TOOL.findall(text))
    missing = [t for t in tools if not osp.isfile(osp.join(ROOT, t))
               and not osp.isfile(osp.join(MMSEG_TOOLS, t[len('tools/'):]))]
    assert not missing, f'{doc} names tools that do not exist: {missing}'
    missing = [t for t in MMSEG_TOOL.findall(text)
               if not osp.isfile(osp.join(MMSEG_TOOLS, t))]
    assert not missing, f'{doc} names mmseg tools it lacks: {missing}'


def test_the_datasets_guide_covers_every_dataset_the_ovss_configs_read():
    guide = read('docs/datasets.md')
    headings = {re.sub(r'[^\w\- ]', '', h.strip().lower()).replace(' ', '-')
                for h in re.findall(r'^#+ (.+)$', guide, re.M)}
    check = load_tool('check_datasets')
    for name, spec in check.CHECKS.items():
        assert f'`{name}`' in guide, name
        assert spec.guide in headings, (name, spec.guide)
        assert f'`{spec.config}`' in guide, spec.config
    paths = glob.glob(osp.join(ROOT, 'configs', 'ovss', '_base_', 'datasets',
                               '*.py'))
    assert len(paths) == 8
    for path in paths:
        ds = Config.fromfile(path).test_dataloader.dataset
        assert f'`{ds.data_root}`' in guide, (path, ds.data_root)
        assert osp.relpath(path, ROOT) in guide, path
        prefix = ds.data_prefix
        for key in ('img_path', 'seg_map_path'):
            assert prefix[key].split('/')[0] in guide, (path, prefix[key])


def row_numbers(line: str, count: int):
    """The ``count`` numbers after the first two cells of a markdown table
    row (method, source), or None."""
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    try:
        return [float(c) for c in cells[2:2 + count]]
    except ValueError:
        return None


def test_the_model_zoo_copies_the_published_training_free_numbers():
    zoo = read('docs/model_zoo.md').splitlines()
    published = load_tool('ovss_benchmark').PUBLISHED
    for method, by_pamr in published.items():
        for source, numbers in by_pamr.values():
            rows = [line for line in zoo
                    if row_numbers(line, 8) == [float(n) for n in numbers]]
            assert len(rows) == 1, (method, source)
            assert 'not measured here' in rows[0]


def test_mim_is_only_named_with_the_package_it_needs():
    for doc in DOCS:
        text = read(doc)
        for match in re.finditer(r'mim train', text):
            near = text[max(0, match.start() - 300):match.end() + 300]
            assert 'openmim' in near, f'{doc}: `mim train` without openmim'


def test_no_doc_claims_the_suite_passes_on_cuda():
    for doc in DOCS:
        text = re.sub(r'\s+', ' ', read(doc))
        assert 'passes with CUDA present' not in text, doc
        assert not re.search(r'released [\w ]*checkpoints load with no '
                             r'missing', text), doc
