"""tools/benchmark.py --modes loop: a whole test run (loader workers, test
pipeline, model in size groups, metric) over synthetic ADE20K-sized JPEGs,
timed per pass over the folder; the folder and the workers are gone after."""
import multiprocessing
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from denseclip_helpers import TOY_CONFIG, load_tool

from denseclip.benchmark.loop_row import (ADE_VAL_SIZES, ANN_DIR, IMG_DIR,
                                          write_ade_folder)


@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmark')


def test_write_ade_folder(tmp_path):
    write_ade_folder(str(tmp_path), 10, num_classes=7)
    names = sorted(os.listdir(tmp_path / IMG_DIR))
    assert names == [f'ADE_val_{i:08d}.jpg' for i in range(1, 11)]
    for i, name in enumerate(names):
        img = cv2.imread(str(tmp_path / IMG_DIR / name))
        label = cv2.imread(str(tmp_path / ANN_DIR / name[:-4]) + '.png',
                           cv2.IMREAD_UNCHANGED)
        size = ADE_VAL_SIZES[i % len(ADE_VAL_SIZES)]
        assert img.shape == (*size, 3) and label.shape == size
        assert label.max() < 7 and img.std() > 20
    assert len(np.unique(label)) > 1


@pytest.mark.integration  # the loader's worker processes
def test_loop_row_on_the_toy_config(bench, tmp_path, monkeypatch, capsys):
    """6 images (toy resize: sizes A B A C A A) in batches of 3 with 2
    workers, one warm-up pass and two timed ones: every pass runs every
    image through the model and the metric."""
    from mmseg.evaluation import IoUMetric
    passes, processed = [], []
    process, compute = IoUMetric.process, IoUMetric.compute_metrics

    def count_process(metric, data_batch, data_samples):
        processed.extend(s['img_path'] for s in data_samples)
        return process(metric, data_batch, data_samples)

    def count_compute(metric, results):
        passes.append(len(results))
        return compute(metric, results)

    monkeypatch.setattr(IoUMetric, 'process', count_process)
    monkeypatch.setattr(IoUMetric, 'compute_metrics', count_compute)
    monkeypatch.setattr('tempfile.tempdir', str(tmp_path))
    children = set(multiprocessing.active_children())
    out_json = str(tmp_path / 'bench.json')
    results = bench.main([TOY_CONFIG, '--modes', 'loop', '--loop-images', '6',
                          '--workers', '2', '--batch', '3', '--iters', '2',
                          '--device', 'cpu', '--json', out_json])
    printed = capsys.readouterr().out
    (row, ) = results[0]['rows']
    assert row['mode'] == 'loop' and row['images'] == 6
    assert row['label'] == ('test loop (2 workers, batch 3: load, '
                            'preprocess, model, metric; 4 test_step calls)')
    assert row['label'] in printed and '6 ADE jpgs' in printed
    assert row['img_per_s'] > 0 and row['s_per_iter'] > 0
    assert row['test_step_calls'] == 4  # [A B A] [C A A]
    assert passes == [6, 6, 6]  # warm-up + 2 timed, every image each
    assert len(processed) == 18
    assert [osp.basename(p) for p in processed[:6]] == [
        f'ADE_val_{i:08d}.jpg' for i in range(1, 7)]
    assert 'step' not in row and 'close' not in row
    # the images and the loader's workers are gone
    assert not [p for p in os.listdir(tmp_path)
                if p.startswith('denseclip_loop_')]
    assert set(multiprocessing.active_children()) <= children


def test_a_dataset_that_cannot_read_the_layout_is_named(bench, tmp_path,
                                                        monkeypatch):
    monkeypatch.setattr('tempfile.tempdir', str(tmp_path))
    with pytest.raises(SystemExit, match=r"test dataset \(PascalVOCDataset\)"
                       " cannot read ADE20K's layout"):
        bench.main([TOY_CONFIG, '--modes', 'loop', '--loop-images', '2',
                    '--workers', '0', '--iters', '1', '--device', 'cpu',
                    '--cfg-options',
                    'test_dataloader.dataset.type=PascalVOCDataset'])
    assert not os.listdir(tmp_path)  # its images removed


@pytest.mark.parametrize('option', [['--workers', '-1'], ['--batch', '0'],
                                    ['--loop-images', '0']])
def test_bad_loop_options_are_refused(bench, option, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args([TOY_CONFIG, '--modes', 'loop'] + option)
    assert option[0] in capsys.readouterr().err


def test_the_loop_row_is_not_run_by_default(bench):
    assert 'loop' not in bench.parse_args([TOY_CONFIG]).modes
