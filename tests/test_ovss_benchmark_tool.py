"""tools/ovss_benchmark.py: a method's configs over the benchmarks whose
data it finds, on tiny datasets in the real layouts with the toy ViT CLIP;
missing data skipped with a line, the table with the published numbers,
resumed after an interruption."""
import csv
import json
import os.path as osp

import numpy as np
import pytest
import torch
from denseclip_helpers import load_tool
from test_ovss_configs import tiny_options
from test_ovss_dataset_configs import make_layout

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def tool():
    return load_tool('ovss_benchmark')


def read_csv(path):
    with open(path) as f:
        return {row['benchmark']: row for row in csv.DictReader(f)}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """VOC2012 (VOC21 and VOC20 read it) and Pascal Context (Context59),
    two images each, in the folders the configs name under data/."""
    root = tmp_path_factory.mktemp('data')
    make_layout('voc21', str(root / 'VOCdevkit' / 'VOC2012'),
                np.random.default_rng(0))
    make_layout('context59', str(root / 'VOCdevkit' / 'VOC2010'),
                np.random.default_rng(1))
    return str(root)


@pytest.fixture
def one_thread():
    """Many small ops (PAMR's shifts) on a busy 2-core machine run far
    slower on 2 threads than on 1 (measured: 3.9 s against 0.05 s an
    image)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_runs_what_it_finds_skips_the_rest_and_resumes(
        tool, vit_clip, data_root, tmp_path, capsys, monkeypatch,
        one_thread):
    work_dir = str(tmp_path / 'naclip')
    argv = ['naclip', '--datasets', 'voc21', 'context59', 'coco_object',
            'voc20', '--data-root', data_root, '--work-dir', work_dir,
            '--cfg-options'] + tiny_options(vit_clip)

    # interrupted during the second benchmark: the first is kept
    real_run = tool.run_benchmark
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(tool, 'run_benchmark', interrupted)
    with pytest.raises(KeyboardInterrupt):
        tool.main(argv)
    assert calls == ['voc21', 'voc20']
    with open(osp.join(work_dir, 'results.json')) as f:
        saved = json.load(f)
    assert sorted(saved['cells']) == ['voc21']
    monkeypatch.setattr(tool, 'run_benchmark', real_run)
    capsys.readouterr()

    # run again: VOC21 from before, the others measured or skipped
    result = tool.main(argv)
    out = capsys.readouterr().out
    assert result['measured'] == 2 and result['failed'] == []
    assert '[ovss] 1/4 voc21: mIoU' in out and \
        '(measured earlier, skipped)' in out
    assert ('[ovss] 2/4 coco_object: skipped, no folder '
            f'{osp.join(data_root, "coco_stuff164k")}') in out
    assert '[ovss] 4/4 context59: 2 images, ' \
        'configs/ovss/naclip/naclip_vit-b16_context59.py, PAMR on' in out
    assert '[ovss]   context59: Iter(test) [2/2]' in out  # progress echoed
    cells = result['cells']
    assert sorted(cells) == ['context59', 'voc20', 'voc21']
    for name, cell in cells.items():
        assert 0 <= cell['metrics']['mIoU'] <= 100
        assert cell['images'] == 2 and cell['pamr'] is True
        assert cell['config'] == \
            f'configs/ovss/naclip/naclip_vit-b16_{name}.py'
        assert cell['device'].startswith('CPU ')
        assert cell['device'].endswith(', 1 thread')

    # the table: ours beside NACLIP's published (PAMR on: its README)
    rows = read_csv(osp.join(work_dir, 'results.csv'))
    assert list(rows) == ['VOC21', 'Context60', 'COCO-Object', 'VOC20',
                          'Context59', 'COCO-Stuff', 'Cityscapes', 'ADE20K',
                          'average (3 of 8)']
    published = dict(VOC21=64.07, Context60=34.99, VOC20=83.03,
                     Context59=38.35, ADE20K=19.05)
    for name, value in published.items():
        assert float(rows[name]['mIoU_published']) == value
    for name, key in (('VOC21', 'voc21'), ('VOC20', 'voc20'),
                      ('Context59', 'context59')):
        ours = cells[key]['metrics']['mIoU']
        assert float(rows[name]['mIoU_ours']) == pytest.approx(ours, abs=1e-4)
        assert float(rows[name]['difference']) == pytest.approx(
            ours - published[name], abs=1e-3)
        assert rows[name]['pamr'] == 'on' and rows[name]['images'] == '2'
    assert rows['COCO-Object']['mIoU_ours'] == ''
    assert rows['COCO-Object']['status'].startswith('skipped: no folder')
    assert rows['ADE20K']['status'] == 'not run'
    mean = np.mean([cells[k]['metrics']['mIoU'] for k in cells])
    assert float(rows['average (3 of 8)']['mIoU_ours']) == pytest.approx(
        mean, abs=1e-3)
    assert float(rows['average (3 of 8)']['mIoU_published']) == \
        pytest.approx((64.07 + 83.03 + 38.35) / 3, abs=1e-3)
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert 'Published: NACLIP README, PAMR on (average of the 8: 42.46)' \
        in table
    assert '| VOC21 | ' in table and '| 64.07 |' in table
    assert 'Measured on CPU' in table

    # all measured: a third run measures nothing; other settings measure anew
    assert tool.main(argv)['measured'] == 0
    again = tool.main(argv[:1] + ['--datasets', 'voc21'] + argv[6:] +
                      ['model.prob_thd=0.2'])
    out = capsys.readouterr().out
    assert again['measured'] == 1
    assert 'or its options changed since it was measured' in out


def test_the_settings_of_a_work_dir_are_its_own(tool, tmp_path):
    work_dir = str(tmp_path / 'w')
    data = str(tmp_path / 'nothing')
    tool.main(['sclip', '--datasets', 'ade20k', '--data-root', data,
               '--work-dir', work_dir])
    with pytest.raises(SystemExit, match="measured on something else .*"
                       "method: 'sclip' then, 'clearclip' now.*"
                       "choose another --work-dir"):
        tool.main(['clearclip', '--datasets', 'ade20k', '--data-root', data,
                   '--work-dir', work_dir])


def test_pamr_and_protocol_choose_configs_and_published_numbers(tool):
    plan = tool.plan_benchmarks(tool.parse_args(['naclip', '--no-pamr']))
    assert not any(job['pamr'] for job in plan.values())
    assert plan['voc21']['config'] == \
        'configs/ovss/naclip/naclip_vit-b16_voc21.py'
    rows = tool.table_rows('naclip', {}, plan, {})
    assert [r['published'] for r in rows[:8]] == [
        58.9, 32.2, 33.2, 79.7, 35.2, 23.3, 35.5, 17.4]  # the paper's
    plan = tool.plan_benchmarks(tool.parse_args(['sclip', '--pamr']))
    assert all(job['cfg'].model.pamr == dict(type='PAMR', num_iter=10,
                                             dilations=(8, 16))
               for job in plan.values())
    assert tool.table_rows('sclip', {}, plan, {})[0]['published'] is None
    plan = tool.plan_benchmarks(tool.parse_args(['sclip', '--protocol',
                                                 'default']))
    assert plan['voc21']['config'].endswith('sclip_vit-b16_voc21_default.py')
    assert plan['voc21']['cfg'].model.logit_scale == 40.0
    # the same settings in both protocols: the paper's file
    assert plan['context59']['config'].endswith('sclip_vit-b16_context59.py')
    args = tool.parse_args(['clearclip', '--protocol', 'default', '--pamr'])
    assert args.work_dir == osp.join('work_dirs', 'ovss_benchmark',
                                     'clearclip_default_pamr')


def test_data_root_replaces_the_configs_data_folder(tool, tmp_path):
    args = tool.parse_args(['sclip', '--data-root', str(tmp_path)])
    plan = tool.plan_benchmarks(args)
    assert plan['cityscapes']['cfg'].test_dataloader.dataset.data_root == \
        osp.join(str(tmp_path), 'cityscapes')
    assert plan['ade20k']['cfg'].test_dataloader.dataset.data_root == \
        osp.join(str(tmp_path), 'ade', 'ADEChallengeData2016')


def test_coco_object_without_its_labels_is_skipped_with_a_hint(
        tool, tmp_path):
    """COCO-Stuff's data without the converter's *_instanceTrainIds.png."""
    make_layout('coco_stuff164k', str(tmp_path / 'coco_stuff164k'),
                np.random.default_rng(0))
    plan = tool.plan_benchmarks(
        tool.parse_args(['naclip', '--data-root', str(tmp_path)]))
    assert tool.find_data(plan['coco_stuff164k']['cfg']) == (2, '')
    images, missing = tool.find_data(plan['coco_object']['cfg'])
    assert images is None
    assert missing.startswith('labels missing, e.g. ')
    assert missing.endswith('_instanceTrainIds.png (make them: '
                            'tools/dataset_converters/coco_object.py)')


def test_unknown_benchmark_is_named(tool, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(['sclip', '--datasets', 'voc21', 'pascal'])
    assert 'unknown benchmark(s) pascal; valid: voc21, context60' in \
        capsys.readouterr().err
