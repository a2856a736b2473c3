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
def test_another_data_seed_writes_another_dataset(shared_toy_files,
                                                  tmp_path):
    work_dir = str(tmp_path / 'toy')
    first = copy_toy_files(shared_toy_files, work_dir)
    image = osp.join(first.data_root, 'images', 'validation',
                     'ADE_val_00000001.jpg')
    before = open(image, 'rb').read()
    other = toy_files.prepare_toy_files(work_dir, data_seed=1)
    assert other.reused is False and other.data_root == first.data_root
    assert open(image, 'rb').read() != before
    assert toy_files.prepare_toy_files(work_dir, data_seed=1).reused is True
