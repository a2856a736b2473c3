"""denseclip.toy.files: the toy CLIP and dataset, and the trained toy CLIP,
written once and reused while their manifest matches."""
import dataclasses
import json
import os
import os.path as osp

import pytest
from conftest import copy_toy_files

from denseclip.toy import files as toy_files


@pytest.mark.slow
def test_toy_files_are_written_once_and_reused(tmp_path):
    work_dir = str(tmp_path / 'toy')
    first = toy_files.prepare_toy_files(work_dir)
    assert first.reused is False
    clip_mtime = os.stat(first.clip_file).st_mtime_ns
    val_dir = osp.join(first.data_root, 'images', 'validation')
    images = sorted(os.listdir(val_dir))
    assert len(images) == toy_files.DATA['num_val']
    assert images[0] == 'ADE_val_00000001.jpg'  # ADE20K's own naming
    again = toy_files.prepare_toy_files(work_dir)
    assert again == dataclasses.replace(first, reused=True)
    assert os.stat(first.clip_file).st_mtime_ns == clip_mtime

    # other settings in the manifest: everything written anew, stale files
    # of the old dataset gone
    stale = osp.join(val_dir, 'ADE_val_99999999.jpg')
    open(stale, 'w').close()
    manifest = osp.join(work_dir, 'toy_files.json')
    with open(manifest) as f:
        recorded = json.load(f)
    recorded['data']['num_val'] = 3
    with open(manifest, 'w') as f:
        json.dump(recorded, f)
    assert toy_files.prepare_toy_files(work_dir).reused is False
    assert not osp.exists(stale)
    assert len(os.listdir(val_dir)) == toy_files.DATA['num_val']
    # a lost file: written anew
    os.remove(first.clip_file)
    assert toy_files.prepare_toy_files(work_dir).reused is False
    assert osp.isfile(first.clip_file)


def test_a_dataset_folder_not_written_by_the_demo_is_left_alone(tmp_path):
    data_root = tmp_path / 'toy' / 'ade' / 'ADEChallengeData2016'
    (data_root / 'images').mkdir(parents=True)
    mine = data_root / 'images' / 'ADE_train_00000001.jpg'
    mine.write_bytes(b'user data')
    with pytest.raises(SystemExit, match='not written by the toy demo'):
        toy_files.prepare_toy_files(str(tmp_path / 'toy'))
    assert mine.read_bytes() == b'user data'


@pytest.mark.slow
def test_trained_toy_clip_is_trained_once_and_reused(tmp_path, capsys):
    work_dir = str(tmp_path / 'toy')
    first = toy_files.prepare_trained_clip(work_dir, 'ViT', fast=True)
    assert first.reused is False
    assert first.clip_file == osp.join(work_dir, 'clip',
                                       'toy_ViT_trained.pt')
    assert 0 <= first.retrieval <= 1
    out = capsys.readouterr().out
    assert f'step {toy_files.FAST_CLIP_STEPS}/{toy_files.FAST_CLIP_STEPS}' in out
    mtime = os.stat(first.clip_file).st_mtime_ns
    again = toy_files.prepare_trained_clip(work_dir, 'ViT', fast=True)
    assert again == dataclasses.replace(first, reused=True)
    assert os.stat(first.clip_file).st_mtime_ns == mtime
    assert capsys.readouterr().out == ''  # no training the second time
    # another recipe (here: the full one) is trained anew; so is an older
    # version of the training code
    manifest = osp.splitext(first.clip_file)[0] + '.json'
    with open(manifest) as f:
        recorded = json.load(f)
    assert recorded['recipe']['steps'] == toy_files.FAST_CLIP_STEPS
    recorded['version'] -= 1
    with open(manifest, 'w') as f:
        json.dump(recorded, f)
    assert toy_files.prepare_trained_clip(work_dir, 'ViT',
                                     fast=True).reused is False
    with pytest.raises(SystemExit, match="toy_clip='ResNet'.*'RN', 'ViT'"):
        toy_files.prepare_trained_clip(work_dir, 'ResNet')


@pytest.mark.slow
def test_each_data_seed_has_its_own_folder(shared_toy_files, tmp_path):
    """Another seed's dataset goes to its own folder: the default seed's
    files (what a resumed sweep measured) are left as they were."""
    work_dir = str(tmp_path / 'toy')
    first = copy_toy_files(shared_toy_files, work_dir)
    assert first.data_root == toy_files.toy_data_root(work_dir) == osp.join(
        work_dir, 'ade', 'ADEChallengeData2016')  # the toy configs' path
    image = osp.join('images', 'validation', 'ADE_val_00000001.jpg')
    before = {path: os.stat(path).st_mtime_ns
              for path in (osp.join(first.data_root, image), first.clip_file,
                           toy_files.toy_manifest_path(work_dir))}
    other = toy_files.prepare_toy_files(work_dir, data_seed=1)
    assert other.reused is False
    assert other.data_root == toy_files.toy_data_root(work_dir, 1) == \
        osp.join(work_dir, 'ade_seed1', 'ADEChallengeData2016')
    assert other.clip_file == first.clip_file
    assert osp.isfile(toy_files.toy_manifest_path(work_dir, 1))
    assert {path: os.stat(path).st_mtime_ns for path in before} == before
    with open(osp.join(first.data_root, image), 'rb') as f, \
            open(osp.join(other.data_root, image), 'rb') as g:
        assert f.read() != g.read()
    assert toy_files.prepare_toy_files(work_dir, data_seed=1).reused is True
    assert toy_files.prepare_toy_files(work_dir).reused is True


def test_a_run_stopped_while_writing_the_data_writes_it_again(tmp_path,
                                                              monkeypatch):
    """The manifest says the data is there only once it is."""
    from denseclip.toy import data as toy_data
    monkeypatch.setitem(toy_files.DATA, 'num_train', 1)
    monkeypatch.setitem(toy_files.DATA, 'num_val', 1)
    work_dir = str(tmp_path / 'toy')
    real = toy_data.make_toy_dataset

    def killed(root, **kwargs):
        os.makedirs(osp.join(root, 'images', 'training'))
        raise KeyboardInterrupt

    monkeypatch.setattr(toy_data, 'make_toy_dataset', killed)
    with pytest.raises(KeyboardInterrupt):
        toy_files.prepare_toy_files(work_dir, data_seed=2)
    monkeypatch.setattr(toy_data, 'make_toy_dataset', real)
    clip_mtime = os.stat(osp.join(work_dir, 'clip', 'toy_RN.pt')).st_mtime_ns
    again = toy_files.prepare_toy_files(work_dir, data_seed=2)
    assert again.reused is False
    assert len(os.listdir(osp.join(again.data_root, 'images',
                                   'validation'))) == 1
    assert os.stat(again.clip_file).st_mtime_ns == clip_mtime  # kept
