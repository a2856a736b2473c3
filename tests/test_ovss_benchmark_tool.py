"""tools/ovss_benchmark.py: a method's configs over the benchmarks whose
data it finds, on tiny datasets in the real layouts with the toy ViT CLIP;
missing data skipped with a line, the table with the published numbers,
resumed after an interruption."""
import csv
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
import torch
from denseclip_helpers import load_tool
from test_ovss_configs import tiny_options
from test_ovss_dataset_configs import SIZE, make_layout

from denseclip.toy.data import make_toy_dataset

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
    assert 'Published (ViT-B/16): NACLIP README, PAMR on (average of the 8: '\
        '42.46)' \
        in table
    assert '| VOC21 | ' in table and '| 64.07 |' in table
    assert 'Measured on CPU' in table

    # all measured: a third run measures nothing; other options are refused
    # (never measured into the same table)
    assert tool.main(argv)['measured'] == 0
    with pytest.raises(SystemExit, match='cfg_options: model.prob_thd=0.2 '
                       'added now'):
        tool.main(argv[:1] + ['--datasets', 'voc21'] + argv[6:] +
                  ['model.prob_thd=0.2'])


METRICS = dict(aAcc=90.0, mIoU=50.0, mAcc=60.0)


@pytest.fixture
def fake_runs(tool, monkeypatch):
    """tools/test.py's runs replaced by a stand-in that returns
    :data:`METRICS` (these tests are about what is run, kept, refused and
    written); the labels of the benchmarks it ran."""
    ran = []

    def run_benchmark(test_tool, path, options, run_dir, label, verbose):
        ran.append(label)
        return dict(METRICS)

    monkeypatch.setattr(tool, 'run_benchmark', run_benchmark)
    monkeypatch.setattr(tool, 'load_test_tool', lambda: None)
    return ran


def _argv(method, data_root, work_dir, clip, *options):
    return [method, '--datasets', 'voc21', 'voc20', '--data-root', data_root,
            '--work-dir', work_dir, '--cfg-options'] + tiny_options(clip) + \
        list(options)


def test_the_settings_of_a_work_dir_are_its_own(tool, vit_clip, data_root,
                                                tmp_path, fake_runs):
    work_dir = str(tmp_path / 'w')
    tool.main(_argv('sclip', data_root, work_dir, vit_clip))
    with pytest.raises(SystemExit, match="measured on something else .*"
                       "method: 'sclip' then, 'clearclip' now.*"
                       "choose another --work-dir"):
        tool.main(_argv('clearclip', data_root, work_dir, vit_clip))


def test_rows_measured_with_other_options_are_refused_not_averaged(
        tool, vit_clip, data_root, tmp_path, fake_runs):
    work_dir = str(tmp_path / 'w')
    assert tool.main(_argv('sclip', data_root, work_dir, vit_clip)
                     )['measured'] == 2
    before = open(osp.join(work_dir, 'results.json')).read()
    fake_runs.clear()
    argv = _argv('sclip', data_root, work_dir, vit_clip, 'model.prob_thd=0.2')
    argv[argv.index('voc20')] = 'context59'
    with pytest.raises(SystemExit, match=r'results.json: its cells were '
                       'measured on something else than this run '
                       r'\(cfg_options: model.prob_thd=0.2 added now\).*mv '
                       '.*results.json .*results.json.old'):
        tool.main(argv)
    assert fake_runs == []
    assert open(osp.join(work_dir, 'results.json')).read() == before


def test_a_cell_measured_on_other_data_or_another_config_is_refused(
        tool, vit_clip, data_root, tmp_path, fake_runs):
    import shutil
    data = str(tmp_path / 'data')
    shutil.copytree(data_root, data)
    work_dir = str(tmp_path / 'w')
    argv = _argv('naclip', data, work_dir, vit_clip)
    tool.main(argv)
    results = osp.join(work_dir, 'results.json')
    with open(results) as f:
        recorded = json.load(f)
    assert recorded['cells']['voc21']['data']['images'] == 2
    clip = recorded['measured_on']['clip'][vit_clip.jit]
    assert clip['sha256'] == hashlib.sha256(
        open(vit_clip.jit, 'rb').read()).hexdigest()
    # VOC2012 written anew in place: other images under the same names
    make_toy_dataset(osp.join(data, 'VOCdevkit', 'VOC2012'), 'voc',
                     num_train=1, num_val=2, train_size=SIZE, val_size=SIZE,
                     seed=5)
    with pytest.raises(SystemExit, match=r'its voc21 cell was measured on '
                       r'something else than this run \(data: .*VOC2012 \(2 '
                       r'images, 5 files, fingerprint \w{12}\) then, '
                       r'.*VOC2012 \(2 images, 5 files, fingerprint \w{12}\) '
                       r'now\)'):
        tool.main(argv)
    # a cell measured with another version of its config
    shutil.rmtree(data)
    shutil.copytree(data_root, data)
    recorded['cells']['voc21']['settings'] = '0' * 64
    with open(results, 'w') as f:
        json.dump(recorded, f)
    with pytest.raises(SystemExit, match=r'its voc21 cell was measured on '
                       r'something else .*config_sha256: 000000000000 then'):
        tool.main(argv)
    assert fake_runs == ['voc21', 'voc20']


def test_a_results_file_of_an_earlier_version_is_refused_naming_it(
        tool, vit_clip, data_root, tmp_path, fake_runs):
    work_dir = tmp_path / 'w'
    work_dir.mkdir()
    path = work_dir / 'results.json'
    path.write_text(json.dumps(dict(
        version=1, settings=dict(method='sclip', protocol='paper', pamr=None),
        cells=dict(voc21=dict(metrics=METRICS)))))
    with pytest.raises(SystemExit, match=f'{path} was written by an earlier '
                       'tools/ovss_benchmark.py, which did not record'):
        tool.main(_argv('sclip', data_root, str(work_dir), vit_clip))
    assert fake_runs == []


def test_the_title_and_table_name_the_clip_and_the_options(
        tool, vit_clip, data_root, tmp_path, fake_runs):
    work_dir = str(tmp_path / 'w')
    result = tool.main(_argv('sclip', data_root, work_dir, vit_clip,
                             'model.prob_thd=0.3'))
    sha = hashlib.sha256(open(vit_clip.jit, 'rb').read()).hexdigest()
    with open(result['paths']['md']) as f:
        title, _, settings = f.read().splitlines()[:3]
    assert title == (f'# SCLIP on the open-vocabulary benchmarks, CLIP '
                     f'{vit_clip.jit} (ViT, patch 16, width 64, 2 layers, '
                     f'64 px, SHA-256 {sha[:12]})')
    assert 'ViT-B/16' not in title
    assert '--cfg-options: `model.backbone.input_resolution=64 ' in settings
    assert 'model.prob_thd=0.3`' in settings
    rows = read_csv(result['paths']['csv'])
    assert {r['clip'] for r in rows.values()} == {vit_clip.jit}
    assert {r['clip_sha256'] for r in rows.values()} == {sha}
    assert {r['cfg_options'] for r in rows.values()} == {
        ' '.join(tiny_options(vit_clip) + ['model.prob_thd=0.3'])}


def test_the_average_of_what_was_measured_stands_beside_the_published(
        tool):
    """SCLIP has published numbers without PAMR only."""
    plan = tool.plan_benchmarks(tool.parse_args(['sclip', '--pamr']))

    def cell(value, pamr):
        return dict(metrics=dict(mIoU=value), pamr=pamr, images=2,
                    seconds=1.0, device='CPU', config='c.py')

    rows = tool.table_rows('sclip', dict(voc21=cell(40.0, True),
                                         voc20=cell(60.0, True)), plan, {})
    assert rows[-1]['benchmark'] == 'average (2 of 8)'
    assert (rows[-1]['ours'], rows[-1]['published']) == (50.0, None)
    # only some with a published number: an average over those as well
    rows = tool.table_rows('sclip', dict(voc21=cell(40.0, False),
                                         voc20=cell(60.0, True)), plan, {})
    assert [(r['benchmark'], r['ours'], r['published']) for r in rows[8:]] \
        == [('average (2 of 8)', 50.0, None),
            ('average with published (1 of 8)', 40.0, 59.1)]
    assert rows[-1]['difference'] == pytest.approx(40.0 - 59.1)


def test_without_the_clip_file_one_error_before_anything_runs(
        tool, data_root, tmp_path, fake_runs, monkeypatch):
    work_dir = str(tmp_path / 'w')
    monkeypatch.chdir(tmp_path)  # no pretrained/ViT-B-16.pt here
    with pytest.raises(SystemExit) as raised:
        tool.main(['naclip', '--data-root', data_root, '--work-dir',
                   work_dir])
    message = str(raised.value)
    assert message == (
        '[ovss] CLIP file pretrained/ViT-B-16.pt does not exist '
        '(model.backbone.pretrained, model.decode_head.clip_pretrained of '
        'configs/ovss/naclip/naclip_vit-b16_*.py): download it (python '
        'tools/download_clip.py ViT-B/16; pretrained/README.md lists the '
        'files) or give one with --clip FILE; nothing was run')
    assert fake_runs == [] and not osp.exists(work_dir)
    not_clip = tmp_path / 'not_clip.pt'
    not_clip.write_bytes(b'not a CLIP file')
    with pytest.raises(SystemExit, match='(?s)not_clip.pt is not a CLIP '
                       'checkpoint.*nothing was run'):
        tool.main(['naclip', '--data-root', data_root, '--work-dir',
                   work_dir, '--cfg-options',
                   f'model.backbone.pretrained={not_clip}'])
    assert fake_runs == [] and not osp.exists(work_dir)


def test_a_data_root_without_data_is_an_error(tool, vit_clip, tmp_path,
                                              fake_runs):
    work_dir = str(tmp_path / 'w')
    with pytest.raises(SystemExit, match='--data-root /nonexistent: no such '
                       'folder'):
        tool.main(_argv('sclip', '/nonexistent', work_dir, vit_clip))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit, match='no data of voc21, voc20 under '
                       '.*empty: voc21: no folder .*VOC2012; voc20: no folder'
                       '.*; nothing was run'):
        tool.main(_argv('sclip', str(empty), work_dir, vit_clip))
    assert fake_runs == [] and not osp.exists(work_dir)


def test_clip_points_every_config_at_the_file_and_its_shape(
        tool, vit_clip, rn_clip, capsys):
    args = tool.parse_args(['naclip', '--clip', vit_clip.jit])
    assert args.work_dir == osp.join('work_dirs', 'ovss_benchmark',
                                     'naclip_paper_toy_vit')
    plan = tool.plan_benchmarks(args)
    expected = {k.split('=')[0]: k.split('=')[1]
                for k in tiny_options(vit_clip)[:9]}
    for job in plan.values():
        model = job['cfg'].model
        for key, value in expected.items():
            part, name = key.split('.')[1:]
            assert str(model[part][name]) == value, key
        assert model.backbone.patch_size == 16
    with pytest.raises(SystemExit, match='ViT-L/14 does not exist .*python '
                       'tools/download_clip.py ViT-L/14'):
        tool.main(['naclip', '--clip', 'ViT-L/14', '--data-root', ROOT])
    with pytest.raises(SystemExit, match='is a CLIP ResNet'):
        tool.plan_benchmarks(tool.parse_args(['naclip', '--clip',
                                              rn_clip.jit]))
    with pytest.raises(SystemExit):
        tool.parse_args(['-h'])
    assert '--clip FILE' in capsys.readouterr().out


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
    images, missing, data = tool.find_data(plan['coco_stuff164k']['cfg'])
    assert (images, missing, data['images'], data['files']) == (2, '', 2, 4)
    images, missing, data = tool.find_data(plan['coco_object']['cfg'])
    assert images is None and data is None
    assert missing.startswith('labels missing, e.g. ')
    assert missing.endswith('_instanceTrainIds.png (make them: '
                            'tools/dataset_converters/coco_object.py)')


def test_unknown_benchmark_is_named(tool, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(['sclip', '--datasets', 'voc21', 'pascal'])
    assert 'unknown benchmark(s) pascal; valid: voc21, context60' in \
        capsys.readouterr().err


@pytest.fixture(scope='module')
def patch14_clip(tmp_path_factory):
    """A toy ViT CLIP of 14 px patches (56 px)."""
    from types import SimpleNamespace

    from denseclip.toy.clip_model import (TOY_VIT, build_openai_clip,
                                          write_clip_checkpoint)
    shape = dict(TOY_VIT, vision_patch_size=14, image_resolution=56)
    path = write_clip_checkpoint(
        build_openai_clip(seed=5, **shape),
        str(tmp_path_factory.mktemp('p14') / 'toy_vit14.pt'))
    return SimpleNamespace(jit=str(path), shape=shape)


def test_the_clip_shape_chooses_the_config_family(tool):
    """ViT-L/14's shape runs the vit-l14 configs; any other the vit-b16
    ones (with the file's shape)."""
    l14 = dict(type='CLIPVisionTransformer', patch_size=14, width=1024,
               layers=24)
    assert tool.clip_family(l14) == 'vit-l14'
    assert tool.clip_family(dict(l14, input_resolution=336)) == 'vit-l14'
    assert tool.clip_family(dict(l14, width=768, patch_size=16,
                                 layers=12)) == 'vit-b16'
    assert tool.clip_family(dict(l14, layers=12)) == 'vit-b16'
    assert tool.clip_family(None) == 'vit-b16'
    assert tool.config_path('naclip', 'voc21', 'paper', 'vit-l14') == \
        osp.join(ROOT, 'configs/ovss/naclip/naclip_vit-l14_voc21.py')
    assert tool.config_path('maskclip', 'voc21', 'default', 'vit-l14') == \
        osp.join(ROOT, 'configs/ovss/maskclip/maskclip_vit-l14_voc21.py')


def test_an_l14_shaped_clip_runs_the_l14_configs_and_the_table_names_it(
        tool, patch14_clip, data_root, tmp_path, fake_runs, monkeypatch):
    """A file of ViT-L/14's shape (here: the toy's, made ViT-L/14's
    for the test) runs the vit-l14 configs at the file's shape; the title
    and the CLIP column name the weights by file and SHA-256 prefix; no
    published ViT-L/14 numbers, so that column is empty; and the work dir
    refuses rows measured on other weights."""
    monkeypatch.setitem(tool.CLIP_FAMILIES, 'vit-l14',
                        ('ViT-L/14', (14, 64, 2)))
    work_dir = str(tmp_path / 'w')
    argv = ['clearclip', '--datasets', 'voc21', '--data-root', data_root,
            '--work-dir', work_dir, '--clip', patch14_clip.jit,
            '--cfg-options', 'model.decode_head.templates=single']
    plan = tool.plan_benchmarks(tool.parse_args(argv))
    assert plan['voc21']['config'] == \
        'configs/ovss/clearclip/clearclip_vit-l14_voc21.py'
    backbone = plan['voc21']['cfg'].model.backbone
    assert (backbone.patch_size, backbone.width, backbone.layers,
            backbone.pretrained) == (14, 64, 2, patch14_clip.jit)
    result = tool.main(argv)
    assert fake_runs == ['voc21']
    sha = hashlib.sha256(open(patch14_clip.jit, 'rb').read()).hexdigest()
    with open(result['paths']['md']) as f:
        lines = f.read().splitlines()
    assert lines[0].endswith(f'{patch14_clip.jit} (ViT, patch 14, width 64, '
                             f'2 layers, 56 px, SHA-256 {sha[:12]})')
    assert 'Published (ViT-L/14): none without PAMR.' in lines[2]
    assert '| CLIP |' in lines[4]
    voc21 = next(line for line in lines if line.startswith('| VOC21 |'))
    assert voc21.split(' | ')[1:3] == ['50.00', '–']
    assert f'| toy_vit14.pt {sha[:12]} |' in voc21
    rows = read_csv(result['paths']['csv'])
    assert rows['VOC21']['mIoU_published'] == ''
    assert rows['VOC21']['clip_sha256'] == sha
    with open(osp.join(work_dir, 'results.json')) as f:
        recorded = json.load(f)['measured_on']['clip']
    assert [r['sha256'] for r in recorded.values()] == [sha]
    # the same work dir on other weights: refused, nothing measured
    other = str(tmp_path / 'other.pt')  # the same model, as a state dict
    torch.save(torch.jit.load(patch14_clip.jit).state_dict(), other)
    with pytest.raises(SystemExit) as refused:
        tool.main(argv[:7] + ['--clip', other] + argv[9:])
    message = str(refused.value)
    assert 'measured on something else than this run' in message
    assert f'sha256 {sha[:12]}' in message
    assert fake_runs == ['voc21']


def test_scclip_plans_its_configs_and_published_numbers(tool):
    plan = tool.plan_benchmarks(tool.parse_args(['scclip']))
    assert plan['voc21']['config'] == \
        'configs/ovss/scclip/scclip_vit-b16_voc21.py'
    assert plan['voc21']['cfg'].model.area_thd == 0.1
    rows = tool.table_rows('scclip', {}, plan, {})
    published = [r['published'] for r in rows[:8]]
    assert published == [64.6, 36.8, 37.7, 84.3, 40.1, 26.6, 41.0, 20.1]
    assert round(sum(published) / 8, 1) == 43.9  # the paper's average
    plan = tool.plan_benchmarks(tool.parse_args(['scclip', '--protocol',
                                                 'default']))
    assert plan['coco_object']['config'].endswith(
        'scclip_vit-b16_coco_object_default.py')
    assert (plan['coco_object']['cfg'].model.logit_scale,
            plan['coco_object']['cfg'].model.prob_thd) == (40.0, 0.1)
    assert plan['ade20k']['config'].endswith('scclip_vit-b16_ade20k.py')


def test_scclip_runs_on_two_synthetic_benchmarks(tool, vit_clip, data_root,
                                                 tmp_path, capsys,
                                                 one_thread):
    """The toy ViT CLIP has 2 blocks: SC-CLIP's layers given for it."""
    block = 'model.backbone.dense_last_block'
    work_dir = str(tmp_path / 'scclip')
    result = tool.main(
        ['scclip', '--datasets', 'voc21', 'context59', '--data-root',
         data_root, '--work-dir', work_dir, '--cfg-options'] +
        tiny_options(vit_clip) +
        [f'{block}.self_adjust.pre_layer=0', f'{block}.self_adjust.'
         'post_layer=0', f'{block}.fusion.layers=(0,1)',
         f'{block}.cls_weight=0.3'])
    assert result['measured'] == 2 and result['failed'] == []
    out = capsys.readouterr().out
    assert 'configs/ovss/scclip/scclip_vit-b16_voc21.py' in out
    rows = read_csv(osp.join(work_dir, 'results.csv'))
    assert float(rows['VOC21']['mIoU_published']) == 64.6
    assert float(rows['Context59']['mIoU_published']) == 40.1
    assert 0 <= float(rows['Context59']['mIoU_ours']) <= 100
    assert rows['Context59']['pamr'] == 'off'


def test_proxyclip_plans_its_configs_vfm_and_published_numbers(tool):
    plan = tool.plan_benchmarks(tool.parse_args(['proxyclip']))
    assert plan['voc21']['config'] == \
        'configs/ovss/proxyclip/proxyclip_vit-b16_voc21.py'
    assert plan['voc21']['cfg'].model.vfm.pretrained == 'dino_vitb8'
    # the VFM is not a CLIP file
    assert list(tool.clip_files(plan)) == ['pretrained/ViT-B-16.pt']
    rows = tool.table_rows('proxyclip', {}, plan, {})
    published = [r['published'] for r in rows[:8]]
    assert published == [61.3, 35.3, 37.5, 80.3, 39.1, 26.5, 38.1, 20.2]
    assert round(sum(published) / 8, 1) == 42.3  # the paper's average


def test_proxyclip_without_its_vfm_file_stops_before_anything_runs(
        tool, vit_clip, data_root, tmp_path, capsys):
    work_dir = str(tmp_path / 'w')
    with pytest.raises(SystemExit, match=r'\[ovss\] model.vfm.pretrained of '
                       r'configs/ovss/proxyclip/\*.py: .*dino_vitb8.*'
                       r'download_vfm.py dino_vitb8.*nothing was run'):
        tool.main(['proxyclip', '--datasets', 'voc21', '--data-root',
                   data_root, '--work-dir', work_dir, '--cfg-options'] +
                  tiny_options(vit_clip))
    assert not osp.exists(work_dir)
    with pytest.raises(SystemExit):
        tool.main(['naclip', '--vfm', 'dino_vitb8'])
    assert '--vfm is read by proxyclip only' in capsys.readouterr().err


def test_proxyclip_runs_on_two_synthetic_benchmarks(tool, vit_clip, tiny_vfm,
                                                    data_root, tmp_path,
                                                    capsys, one_thread):
    """The tiny DINO as --vfm: its name and SHA-256 in the title and the
    weights' column; resumed on the same VFM, refused on another."""
    work_dir = str(tmp_path / 'proxyclip')
    argv = ['proxyclip', '--datasets', 'voc21', 'context59', '--data-root',
            data_root, '--work-dir', work_dir, '--vfm', tiny_vfm,
            '--cfg-options'] + tiny_options(vit_clip)
    result = tool.main(argv)
    assert result['measured'] == 2 and result['failed'] == []
    out = capsys.readouterr().out
    assert 'configs/ovss/proxyclip/proxyclip_vit-b16_voc21.py' in out
    assert f'VFM {tiny_vfm}' in out
    rows = read_csv(osp.join(work_dir, 'results.csv'))
    assert float(rows['VOC21']['mIoU_published']) == 61.3
    assert float(rows['Context59']['mIoU_published']) == 39.1
    assert 0 <= float(rows['Context59']['mIoU_ours']) <= 100
    with open(tiny_vfm, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert f'VFM {osp.abspath(tiny_vfm)} (SHA-256 {sha[:12]})' in table
    assert f'VFM tiny_dino.pth {sha[:12]}' in table
    with open(osp.join(work_dir, 'results.json')) as f:
        on = json.load(f)['measured_on']
    assert on['vfm'][tiny_vfm]['sha256'] == sha
    # the same again: both resumed; another VFM file: refused
    assert tool.main(argv)['measured'] == 0
    from vfm_helpers import write_tiny_dino
    other = write_tiny_dino(str(tmp_path / 'other.pth'), seed=1)
    with pytest.raises(SystemExit, match='vfm'):
        tool.main([a if a != tiny_vfm else other for a in argv])
