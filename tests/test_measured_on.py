"""denseclip.utils.measured_on / results_file: what a results file records a
cell was measured on, and the refusal to mix cells measured on other
things."""
import hashlib
import json
import os
import os.path as osp

import pytest

from denseclip.utils import measured_on as mo
from denseclip.utils.results_file import (RESULTS_FORMAT_VERSION,
                                          ResultsFileError, load_results)


def test_a_file_is_recorded_by_its_hash_computed_once_per_size_and_time(
        tmp_path, monkeypatch):
    path = tmp_path / 'clip.pt'
    path.write_bytes(b'weights')
    record = mo.file_record(str(path))
    assert record['path'] == str(path)
    assert record['sha256'] == hashlib.sha256(b'weights').hexdigest()
    hashed = []
    monkeypatch.setattr(mo, 'sha256_file',
                        lambda p: hashed.append(p) or 'computed')
    monkeypatch.setattr(mo, '_HASHES', {})
    # an earlier run's record of the same size and time: its hash is reused
    assert mo.file_record(str(path), known=record)['sha256'] == \
        record['sha256']
    assert hashed == []
    # another time: computed again
    os.utime(path, ns=(1, 1))
    assert mo.file_record(str(path), known=record)['sha256'] == 'computed'
    assert hashed == [str(path)]
    # not a file: recorded as such
    assert mo.file_record('torchvision://resnet50') == dict(
        path='torchvision://resnet50', sha256=None, stat=None)


def test_weight_files_are_found_at_any_depth_of_a_model_config():
    model = dict(type='MaskClipPlus', pretrained=None,
                 teacher=dict(backbone=dict(pretrained='a.pt'),
                              decode_head=dict(clip_pretrained='a.pt')),
                 backbone=dict(init_cfg=dict(type='Pretrained',
                                             checkpoint='r101.pth')),
                 heads=[dict(text_embeddings_path='emb.npy')])
    assert mo.weight_files(model) == {
        'model.teacher.backbone.pretrained': 'a.pt',
        'model.teacher.decode_head.clip_pretrained': 'a.pt',
        'model.backbone.init_cfg.checkpoint': 'r101.pth',
        'model.heads.0.text_embeddings_path': 'emb.npy'}


def test_a_file_list_fingerprint_tells_a_dataset_written_anew(tmp_path):
    root = tmp_path / 'data'
    (root / 'images').mkdir(parents=True)
    image = root / 'images' / 'a.jpg'
    image.write_bytes(b'12345')
    first = mo.fingerprint_files(str(root), [str(image)])
    assert first['root'] == str(root) and first['files'] == 1
    # a copy elsewhere: the same relative names and sizes
    copy = tmp_path / 'copy'
    (copy / 'images').mkdir(parents=True)
    (copy / 'images' / 'a.jpg').write_bytes(b'54321')
    assert mo.fingerprint_files(str(copy), [str(copy / 'images' / 'a.jpg')]
                                )['fingerprint'] == first['fingerprint']
    image.write_bytes(b'another image')  # rewritten in place
    assert mo.fingerprint_files(str(root), [str(image)])['fingerprint'] != \
        first['fingerprint']


def test_differences_name_what_changed_and_ignore_the_hash_cache():
    clip = dict(path='/w/clip.pt', sha256='a' * 64, stat=[1, 2])
    data = dict(root='/d', images=2, files=4, fingerprint='b' * 64)
    then = dict(config='c.py', weights={'model.pretrained': clip}, data=data,
                cfg_options=['x=1'])
    assert mo.differences(then, json.loads(json.dumps(then))) == []
    now = json.loads(json.dumps(then))
    now['weights']['model.pretrained']['stat'] = [1, 3]  # touched only
    assert mo.differences(then, now) == []
    now['weights']['model.pretrained']['sha256'] = 'c' * 64
    now['data']['fingerprint'] = 'd' * 64
    now['cfg_options'] = ['x=2']
    assert mo.differences(then, now) == [
        'weights.model.pretrained: /w/clip.pt (sha256 aaaaaaaaaaaa) then, '
        '/w/clip.pt (sha256 cccccccccccc) now',
        'data: /d (2 images, 4 files, fingerprint bbbbbbbbbbbb) then, /d (2 '
        'images, 4 files, fingerprint dddddddddddd) now',
        'cfg_options: x=1 then, x=2 now']
    assert mo.differences(dict(o=['a=1']), dict(o=['a=1', 'b=2'])) == [
        'o: b=2 added now']
    assert mo.differences(dict(o=['a=1', 'b=2']), dict(o=['b=2'])) == [
        'o: a=1 not given now']
    assert mo.differences(dict(o=['a=1', 'b=2']), dict(o=['b=2', 'a=1'])) \
        == ["o: ['a=1', 'b=2'] then, ['b=2', 'a=1'] now"]


def test_a_results_file_resumes_only_what_was_measured_on_the_same(
        tmp_path):
    path = str(tmp_path / 'results.json')
    on = dict(config='c.py', options=['a=1'])
    results = load_results(path, 'robustness', lambda known: on)
    assert results == dict(version=RESULTS_FORMAT_VERSION, tool='robustness',
                           measured_on=on, cells={})
    results['cells']['clean'] = dict(metrics=dict(mIoU=1.0))
    with open(path, 'w') as f:
        json.dump(results, f)
    seen = []
    assert load_results(path, 'robustness',
                        lambda known: seen.append(known) or on) == results
    assert seen == [on]  # the recorded description, for its hashes
    with pytest.raises(ResultsFileError, match=f'{path}: its cells were '
                       'measured on something else than this run \\(options'
                       ': a=1 then, a=2 now\\).*mv '):
        load_results(path, 'robustness',
                     lambda known: dict(on, options=['a=2']))
    with pytest.raises(ResultsFileError, match="holds results of "
                       "'robustness', not of ovss_benchmark"):
        load_results(path, 'ovss_benchmark', lambda known: on)


@pytest.mark.parametrize('content', [
    '{"version": 1, "settings": {}, "cells": {"clean": {}}}',
    '{"settings": {"method": "sclip"}, "cells": {}}'])
def test_a_results_file_of_format_1_is_refused_naming_it(tmp_path, content):
    path = str(tmp_path / 'results.json')
    with open(path, 'w') as f:
        f.write(content)
    with pytest.raises(ResultsFileError, match=f'{path} was written by an '
                       'earlier tools/ovss_benchmark.py, which did not record '
                       'the data'):
        load_results(path, 'ovss_benchmark', lambda known: {})


def test_an_unreadable_results_file_is_named(tmp_path):
    path = str(tmp_path / 'results.json')
    with open(path, 'w') as f:
        f.write('{"cells": ')
    with pytest.raises(ResultsFileError,
                       match=f'{path} is not a robustness results file'):
        load_results(path, 'robustness', lambda known: {})
    assert osp.isfile(path)  # left as it was
