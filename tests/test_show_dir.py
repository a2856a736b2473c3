"""tools/test.py --show-dir on a test-only data folder (no training images):
mmseg's SegVisualizationHook read ``runner.iter``, which built the training
loop and its dataset, and the test died after its first painted batch naming
the training folder. And what the paintings are: mmseg's two panels."""
import glob
import os.path as osp
import shutil

import cv2
import pytest
from denseclip_helpers import REPO, load_tool
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.engine.hooks import SegVisualizationHook
from tiny_runner import runner_cfg, write_dataset

from denseclip.engine import (StandaloneSegVisualizationHook,
                              use_standalone_visualization)

test_tool = load_tool('test')


@pytest.fixture
def test_only_data(tmp_path) -> str:
    """The tiny dataset with its validation split only (4 images, 32x32)."""
    root = str(tmp_path / 'data')
    write_dataset(root)
    for kind in ('img_dir', 'ann_dir'):
        shutil.rmtree(osp.join(root, kind, 'train'))
    return root


def _config(root: str, tmp_path, name: str) -> str:
    cfg = runner_cfg(root, str(tmp_path / 'work'), name)
    cfg.default_hooks.visualization.interval = 1  # paint every batch
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


def test_show_dir_paints_a_test_only_folder(test_only_data, tmp_path):
    """Every test image painted, the training set never built: before,
    FileNotFoundError: .../img_dir/train after the first batch."""
    show_dir = str(tmp_path / 'show')
    metrics = test_tool.main([
        _config(test_only_data, tmp_path, 'show_test_only'), '--work-dir',
        str(tmp_path / 'work'), '--show-dir', show_dir])
    assert 'mIoU' in metrics
    painted = sorted(glob.glob(osp.join(show_dir, 'vis_data', 'vis_image',
                                        '*.png')))
    assert [osp.basename(p) for p in painted] == [
        f'test_{i}.png_0.png' for i in range(4)]
    assert not osp.exists(osp.join(test_only_data, 'img_dir', 'train'))


def test_the_stock_hook_builds_the_training_set(test_only_data, tmp_path):
    """The control: mmseg's own hook, as tools/test.py used it, fails on
    the same folder (so the test above can fail)."""
    cfg = Config.fromfile(_config(test_only_data, tmp_path, 'stock_hook'))
    cfg.default_hooks.visualization.draw = True
    cfg.visualizer.save_dir = str(tmp_path / 'show')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(FileNotFoundError, match='img_dir/train'):
        runner.test()


def test_tools_test_swaps_the_stock_hook_only():
    cfg = Config(dict(default_hooks=dict(
        visualization=dict(type='SegVisualizationHook', interval=7))))
    use_standalone_visualization(cfg)
    assert cfg.default_hooks.visualization == dict(
        type='StandaloneSegVisualizationHook', interval=7)
    custom = Config(dict(default_hooks=dict(
        visualization=dict(type='MyVisualizationHook'))))
    use_standalone_visualization(custom)
    assert custom.default_hooks.visualization.type == 'MyVisualizationHook'
    assert issubclass(StandaloneSegVisualizationHook, SegVisualizationHook)


def test_paintings_are_ground_truth_beside_prediction(test_only_data,
                                                      tmp_path):
    """Two panels of the image's size (ground truth | prediction, each over
    the image), as the docs and the toy demo's summary say; no doc says
    "input | ground truth | prediction" (three panels) any more."""
    show_dir = str(tmp_path / 'show')
    test_tool.main([_config(test_only_data, tmp_path, 'panels'),
                    '--work-dir', str(tmp_path / 'work'), '--show-dir',
                    show_dir, '--cfg-options',
                    'test_dataloader.dataset.indices=1'])
    image = cv2.imread(osp.join(test_only_data, 'img_dir', 'val', '0.png'))
    painted = cv2.imread(osp.join(show_dir, 'vis_data', 'vis_image',
                                  'test_0.png_0.png'))
    height, width = image.shape[:2]
    assert painted.shape == (height, 2 * width, 3)
    assert load_tool('toy_demo').PAINTED_PANELS == 'ground truth | prediction'
    texts = glob.glob(osp.join(REPO, 'docs', '*.md')) + glob.glob(
        osp.join(REPO, 'tools', '*.py')) + [osp.join(REPO, 'README.md')]
    stale = [p for p in texts
             if 'input | ground truth | prediction' in open(p).read()
             or "(input | ground '" in open(p).read()]
    assert not stale
