"""The class-name files of the 8 open-vocabulary benchmarks
(configs/ovss/class_names): format, class count and order against mmseg's
datasets, and the protocol's synonyms and background lines."""
import glob
import os.path as osp
from typing import List

import pytest
from mmengine.config import Config
from mmseg.datasets import (ADE20KDataset, CityscapesDataset,
                            COCOStuffDataset, PascalContextDataset,
                            PascalContextDataset59, PascalVOCDataset)
from mmseg.utils import get_classes

from denseclip.datasets import COCOObjectDataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NAMES_DIR = osp.join(ROOT, 'configs', 'ovss', 'class_names')
BASES_DIR = osp.join(ROOT, 'configs', 'ovss', '_base_', 'datasets')

# benchmark -> the classes its dataset evaluates, in label order
CLASSES = {
    'voc21': PascalVOCDataset.METAINFO['classes'],
    'voc20': PascalVOCDataset.METAINFO['classes'][1:],
    'context60': PascalContextDataset.METAINFO['classes'],
    'context59': PascalContextDataset59.METAINFO['classes'],
    'coco_object': COCOObjectDataset.METAINFO['classes'],
    'coco_stuff164k': COCOStuffDataset.METAINFO['classes'],
    'cityscapes': CityscapesDataset.METAINFO['classes'],
    'ade20k': ADE20KDataset.METAINFO['classes'],
}
# mmseg's names that glue two words; the files write them readable
READABLE = {'pottedplant': 'potted plant', 'tvmonitor': 'tv monitor',
            'diningtable': 'dining table'}
# (benchmark family, class) whose line need not hold the dataset's own name:
# the protocol names them otherwise (README.md there)
RENAMED = {('voc', 'boat'): 'ship', ('voc', 'diningtable'): 'table',
           ('voc', 'background'): 'sky', ('coco_object', 'background'): 'sky'}
PERSON = {'person', 'person in shirt', 'person in jeans', 'person in dress',
          'person in sweater', 'person in skirt', 'person in jacket'}


def parse(path: str) -> List[List[str]]:
    """The format's rules: UTF-8, one class per line, names separated by
    ', ', no blank line, no empty or repeated name; the file ends with a
    newline. Returns the names of each class."""
    with open(path, 'rb') as f:
        text = f.read().decode('utf-8')
    assert text.endswith('\n') and not text.endswith('\n\n'), path
    classes = []
    for i, line in enumerate(text[:-1].split('\n')):
        names = [n.strip() for n in line.split(',')]
        assert all(names), f'{path}:{i + 1}: empty name in {line!r}'
        # the references' parsers split on ', ' exactly: same names
        assert line.split(', ') == names, f'{path}:{i + 1}: {line!r}'
        assert len(set(names)) == len(names), f'{path}:{i + 1}: repeated'
        classes.append(names)
    return classes


def benchmark_of(path: str) -> str:
    name = osp.splitext(osp.basename(path))[0]
    for suffix in ('_plain', '_proxyclip'):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


FILES = sorted(glob.glob(osp.join(NAMES_DIR, '*.txt')))


def test_every_benchmark_has_a_file_and_every_file_a_benchmark():
    assert {benchmark_of(f) for f in FILES} == set(CLASSES)
    assert {osp.basename(f) for f in FILES if '_plain' in f} == {
        'voc21_plain.txt', 'voc20_plain.txt', 'coco_object_plain.txt'}
    assert {osp.basename(f) for f in FILES if '_proxyclip' in f} == {
        'voc21_proxyclip.txt', 'coco_object_proxyclip.txt'}
    assert osp.isfile(osp.join(NAMES_DIR, 'README.md'))


def test_mmseg_aliases_agree_with_the_dataset_classes():
    # the files are checked against METAINFO; get_classes is the same list
    assert list(get_classes('voc')) == list(CLASSES['voc21'])
    assert list(get_classes('pascal_context')) == list(CLASSES['context59'])
    assert list(get_classes('cocostuff')) == list(CLASSES['coco_stuff164k'])
    assert list(get_classes('cityscapes')) == list(CLASSES['cityscapes'])
    assert list(get_classes('ade')) == list(CLASSES['ade20k'])


@pytest.mark.parametrize('path', FILES, ids=osp.basename)
def test_file_matches_the_dataset_classes_in_order(path):
    benchmark = benchmark_of(path)
    classes = parse(path)
    expected = CLASSES[benchmark]
    assert len(classes) == len(expected)
    family = 'voc' if benchmark.startswith('voc') else benchmark
    plain = path.endswith('_plain.txt')
    for names, cls in zip(classes, expected):
        own = READABLE.get(cls.strip(), cls.strip())
        renamed = RENAMED.get((family, cls))
        if plain and cls == 'background':
            renamed = 'background'
        assert own in names or renamed in names, (path, cls, names)
    # a name in two classes ties and the lower class always wins it
    flat = [n for names in classes for n in names]
    assert len(flat) == len(set(flat)), path
    if plain:
        assert all(len(names) == 1 for names in classes)


def test_the_protocols_synonyms():
    voc21 = parse(osp.join(NAMES_DIR, 'voc21.txt'))
    voc20 = parse(osp.join(NAMES_DIR, 'voc20.txt'))
    coco = parse(osp.join(NAMES_DIR, 'coco_object.txt'))
    assert voc21[1:] == voc20
    assert set(voc21[15]) == PERSON
    assert set(voc21[20]) == {'television monitor', 'tv monitor', 'monitor',
                              'television', 'screen'}
    assert set(coco[1]) == PERSON | {'body'}
    with_synonyms = {b: sum(len(n) > 1 for n in parse(
        osp.join(NAMES_DIR, f'{b}.txt'))) for b in CLASSES}
    assert with_synonyms == dict(voc21=3, voc20=2, context60=0, context59=0,
                                 coco_object=2, coco_stuff164k=0,
                                 cityscapes=0, ade20k=0)


def test_background_lines():
    voc_bg = parse(osp.join(NAMES_DIR, 'voc21.txt'))[0]
    coco = parse(osp.join(NAMES_DIR, 'coco_object.txt'))
    assert len(voc_bg) == 26 and 'background' not in voc_bg
    # COCO-Object's: VOC's words less 'bed', a COCO-Object class of its own
    assert set(coco[0]) == set(voc_bg) - {'bed'}
    assert ['bed'] in coco
    assert parse(osp.join(NAMES_DIR, 'context60.txt'))[0] == ['background']
    for name in ('voc21_plain', 'coco_object_plain'):
        assert parse(osp.join(NAMES_DIR, f'{name}.txt'))[0] == ['background']


def test_proxyclips_files_are_its_background_words_and_one_name_a_class():
    """ProxyCLIP's cls_voc21 / cls_coco_object (mc-lan/ProxyCLIP): its
    background words, every other class by one name (the plain files');
    COCO-Object's words less 'bed', a class of its own there."""
    for bench, words in (('voc21', 26), ('coco_object', 16)):
        own = parse(osp.join(NAMES_DIR, f'{bench}_proxyclip.txt'))
        plain = parse(osp.join(NAMES_DIR, f'{bench}_plain.txt'))
        assert own[1:] == plain[1:]
        assert len(own[0]) == words and 'background' not in own[0]
    voc_bg = parse(osp.join(NAMES_DIR, 'voc21.txt'))[0]
    assert set(parse(osp.join(NAMES_DIR, 'voc21_proxyclip.txt'))[0]) == \
        set(voc_bg)
    coco_bg = parse(osp.join(NAMES_DIR, 'coco_object_proxyclip.txt'))[0]
    assert set(coco_bg) < set(voc_bg) and 'bed' not in coco_bg


@pytest.mark.parametrize('bench', sorted(CLASSES))
def test_dataset_base_names_its_file_and_class_count(bench):
    cfg = Config.fromfile(osp.join(BASES_DIR, f'{bench}.py'))
    assert cfg.class_names_file == f'configs/ovss/class_names/{bench}.txt'
    assert cfg.num_classes == len(CLASSES[bench])
    assert len(parse(osp.join(ROOT, cfg.class_names_file))) == cfg.num_classes
