"""tools/dataset_converters/coco_object.py: COCO-Stuff 164k label maps ->
COCO-Object (0 background, 1..80 things), as the references make them."""
import glob
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmseg.datasets import COCOStuffDataset
from mmseg.registry import DATASETS
from PIL import Image

from denseclip.datasets import COCOObjectDataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load_tool():
    name = '_tool_coco_object'
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', 'dataset_converters', 'coco_object.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # worker processes unpickle its functions
    spec.loader.exec_module(module)
    return module


cvt = _load_tool()


def write_png(path, array):
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def read_png(path):
    return np.array(Image.open(path))


def ann(root, name, split='val2017'):
    return osp.join(str(root), 'annotations', split, name)


def test_mmseg_labels_map_as_the_protocol_defines_them():
    table = cvt.lookup_table('mmseg', 'background')
    label = np.array([[0, 1, 79, 80, 170, 255]], np.uint8)
    assert cvt.convert_label(label, table, 'x').tolist() == [
        [1, 2, 80, 0, 0, 0]]
    # the classes line up: COCO-Stuff's thing k is COCO-Object's k + 1
    assert COCOObjectDataset.METAINFO['classes'][1:] == \
        COCOStuffDataset.METAINFO['classes'][:80]
    ignore = cvt.lookup_table('mmseg', 'ignore')
    assert cvt.convert_label(label, ignore, 'x').tolist() == [
        [1, 2, 80, 0, 0, 255]]


def test_raw_coco_ids_map_to_the_same_classes():
    table = cvt.lookup_table('raw', 'background')
    classes = COCOObjectDataset.METAINFO['classes']
    # raw value = COCO category id - 1
    for raw, name in [(0, 'person'), (2, 'car'), (12, 'stop sign'),
                      (26, 'backpack'), (66, 'dining table'),
                      (69, 'toilet'), (89, 'toothbrush')]:
        assert classes[table[raw]] == name
    things = [v for v in range(91) if table[v] != cvt.BAD]
    assert [table[v] for v in things] == list(range(1, 81))  # order kept
    assert (table[91:182] == 0).all() and table[255] == 0
    for unused in (11, 25, 90, 182, 254):
        with pytest.raises(cvt.LabelFileError, match='bad.png.*values'):
            cvt.convert_label(np.array([[0, unused]], np.uint8), table,
                              'bad.png')


def test_converts_a_split_beside_its_inputs_and_resumes(tmp_path, capsys):
    labels = {
        '000000000001': [[0, 5, 80], [255, 79, 170]],
        '000000000002': [[12, 12, 12], [100, 100, 255]],
        '000000000003': [[3, 90, 1]],
    }
    for stem, label in labels.items():
        write_png(ann(tmp_path, f'{stem}_labelTrainIds.png'), label)
    assert cvt.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'val2017: 3/3 (100%), 3 written, 0 already there' in out
    assert 'val2017 has 3 label maps, COCO-Stuff 164k has 5000' in out
    assert read_png(ann(tmp_path, '000000000001_instanceTrainIds.png')
                    ).tolist() == [[1, 6, 0], [0, 80, 0]]
    assert read_png(ann(tmp_path, '000000000002_instanceTrainIds.png')
                    ).tolist() == [[13, 13, 13], [0, 0, 0]]
    # a second run skips what is there: a changed output stays changed
    first = ann(tmp_path, '000000000001_instanceTrainIds.png')
    write_png(first, [[7, 7, 7], [7, 7, 7]])
    assert cvt.main([str(tmp_path)]) == 0
    assert '0 written, 3 already there' in capsys.readouterr().out
    assert read_png(first).tolist() == [[7, 7, 7], [7, 7, 7]]
    assert cvt.main([str(tmp_path), '--overwrite']) == 0
    assert read_png(first).tolist() == [[1, 6, 0], [0, 80, 0]]
    assert not glob.glob(ann(tmp_path, '.*'))  # no temporary files left


def test_a_bad_file_stops_the_run_named_and_a_rerun_resumes(tmp_path,
                                                            capsys):
    write_png(ann(tmp_path, 'a_labelTrainIds.png'), [[0, 1]])
    write_png(ann(tmp_path, 'b_labelTrainIds.png'), [[0, 200]])  # no class
    write_png(ann(tmp_path, 'c_labelTrainIds.png'), [[2, 3]])
    assert cvt.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert 'b_labelTrainIds.png: label values [200]' in err
    assert osp.exists(ann(tmp_path, 'a_instanceTrainIds.png'))
    assert not osp.exists(ann(tmp_path, 'b_instanceTrainIds.png'))
    assert not glob.glob(ann(tmp_path, '.*'))
    write_png(ann(tmp_path, 'b_labelTrainIds.png'), [[0, 170]])
    assert cvt.main([str(tmp_path)]) == 0
    assert '2 written, 1 already there' in capsys.readouterr().out
    assert read_png(ann(tmp_path, 'c_instanceTrainIds.png')).tolist() == [
        [3, 4]]


def test_unreadable_and_colour_files_are_named(tmp_path, capsys):
    os.makedirs(ann(tmp_path, ''))
    with open(ann(tmp_path, 'x_labelTrainIds.png'), 'wb') as f:
        f.write(b'not a png')
    assert cvt.main([str(tmp_path)]) == 1
    assert 'x_labelTrainIds.png: cannot read' in capsys.readouterr().err
    os.remove(ann(tmp_path, 'x_labelTrainIds.png'))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(
        ann(tmp_path, 'y_labelTrainIds.png'))
    assert cvt.main([str(tmp_path)]) == 1
    assert 'y_labelTrainIds.png: expected a single-channel' in \
        capsys.readouterr().err


def test_missing_inputs_say_what_to_run(tmp_path, capsys):
    assert cvt.main([str(tmp_path), '--splits', 'train2017']) == 1
    err = capsys.readouterr().err
    assert 'no COCO-Stuff label maps (*_labelTrainIds.png)' in err
    assert 'coco_stuff164k.py' in err


def test_raw_source_out_dir_and_processes_agree(tmp_path):
    rng = np.random.default_rng(0)
    table = cvt.lookup_table('raw', 'background')
    valid = [v for v in range(256) if table[v] != cvt.BAD]
    # mmseg's label of a raw value: its rank among the valid raw values
    to_mmseg = {v: i for i, v in enumerate(valid[:-1])}
    to_mmseg[255] = 255
    for i in range(4):
        raw = rng.choice(valid, size=(5, 6)).astype(np.uint8)
        write_png(ann(tmp_path, f'{i:012d}.png'), raw)
        write_png(ann(tmp_path, f'{i:012d}_labelTrainIds.png'),
                  np.vectorize(to_mmseg.get)(raw))
    out = tmp_path / 'out'
    assert cvt.main([str(tmp_path), '--source', 'raw', '--out-dir', str(out),
                     '--nproc', '2']) == 0
    assert cvt.main([str(tmp_path)]) == 0
    made = sorted(glob.glob(ann(out, '*_instanceTrainIds.png')))
    assert len(made) == 4  # the raw source skips *TrainIds.png inputs
    for path in made:
        beside = ann(tmp_path, osp.basename(path))
        np.testing.assert_array_equal(read_png(path), read_png(beside))


def test_runs_as_a_script_without_an_install_or_torch(tmp_path):
    write_png(ann(tmp_path, '000000000009_labelTrainIds.png'), [[0, 80]])
    probe = ('import runpy, sys; sys.argv = sys.argv[1:]\n'
             'try:\n    runpy.run_path(sys.argv[0], run_name="__main__")\n'
             'except SystemExit as e:\n    assert e.code == 0, e.code\n'
             'assert "torch" not in sys.modules')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    tool = osp.join(ROOT, 'tools', 'dataset_converters', 'coco_object.py')
    subprocess.run([sys.executable, '-c', probe, tool, str(tmp_path)],
                   cwd=str(tmp_path), env=env, check=True,
                   stdout=subprocess.DEVNULL)
    assert read_png(ann(tmp_path, '000000000009_instanceTrainIds.png')
                    ).tolist() == [[1, 0]]


def test_dataset_type_reads_the_converters_files(tmp_path):
    assert DATASETS.get('COCOObjectDataset') is COCOObjectDataset
    meta = COCOObjectDataset.METAINFO
    assert len(meta['classes']) == len(meta['palette']) == 81
    assert meta['classes'][0] == 'background' and meta['palette'][0] == [
        0, 0, 0]
    image = osp.join(str(tmp_path), 'images', 'val2017', '000000000005.jpg')
    write_png(image.replace('.jpg', '.png'), [[0]])  # not .jpg: no sample
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(image)
    write_png(ann(tmp_path, '000000000005_labelTrainIds.png'), [[0, 80, 255],
                                                                [3, 4, 5]])
    assert cvt.main([str(tmp_path)]) == 0
    dataset = DATASETS.build(dict(
        type='COCOObjectDataset', data_root=str(tmp_path),
        data_prefix=dict(img_path='images/val2017',
                         seg_map_path='annotations/val2017'),
        pipeline=[dict(type='LoadAnnotations')]))
    assert len(dataset) == 1
    assert dataset[0]['gt_seg_map'].tolist() == [[1, 0, 0], [4, 5, 6]]
