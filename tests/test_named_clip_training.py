"""DenseCLIP trains through the stock tools/train.py from a CLIP given by a
table name (``model.pretrained=NAME``): the name is looked up in
``pretrained/`` (denseclip.clip.files.find_clip_file)."""
import os
import os.path as osp
import shutil

from denseclip_helpers import load_tool

from denseclip.clip import files as clip_files
from denseclip.toy.run_options import path_options

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'toy', 'denseclip_toy.py')


def test_denseclip_trains_from_a_table_name(shared_toy_files, tmp_path, monkeypatch):
    name = 'RN50'
    entry = clip_files.get(name)
    monkeypatch.chdir(tmp_path)
    os.makedirs('pretrained')
    # the toy file in OpenAI's layout under the name the table gives RN50
    shutil.copy(shared_toy_files.clip_file, osp.join('pretrained', entry.filename))
    assert clip_files.find_clip_file(name) == osp.join('pretrained', 'RN50.pt')
    work_dir = str(tmp_path / 'work')
    options = [o for o in path_options(shared_toy_files)
               if not o.startswith('model.pretrained=')]
    options += [f'model.pretrained={name}', 'train_cfg.max_iters=2',
                'train_cfg.val_begin=3', 'default_hooks.checkpoint.interval=2',
                'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
                'train_dataloader.num_workers=0',
                'train_dataloader.persistent_workers=False', 'param_scheduler.0.end=1',
                'param_scheduler.1.begin=1', 'param_scheduler.1.end=2']
    load_tool('train').main([CONFIG, '--work-dir', work_dir, '--cfg-options', *options])
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    log = open(next(osp.join(d, f) for d, _, fs in os.walk(work_dir) for f in fs
                    if f.endswith('.log'))).read()
    assert 'pretrained/RN50.pt' in log  # the file the name resolved to was read


def test_a_missing_name_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import pytest
    with pytest.raises(FileNotFoundError,
                       match=r'python tools/download_clip.py RN50`'):
        clip_files.clip_file_for('RN50')
    # a path that is no name is left to the loader, as before
    assert clip_files.clip_file_for('elsewhere/mine.pt') == 'elsewhere/mine.pt'
