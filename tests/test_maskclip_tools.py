"""MaskCLIP configs, tools/test.py on a toy VOC dataset, the demo, and the
tools that write the reference's files."""
import glob
import importlib.util
import os.path as osp
from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from maskclip_helpers import NAMES, build_maskclip, head_logits
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS

from denseclip.toy.data import make_toy_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str):
    """Import tools/<name>.py under a private name (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        f'maskclip_tools_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert_clip_weights = load_tool('convert_clip_weights')
maskclip_demo = load_tool('maskclip_demo')
prompt_engineering = load_tool('prompt_engineering')
test_tool = load_tool('test')

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/maskclip/maskclip_*.py')))


def _no_init(tensor, *args, **kwargs):
    return tensor


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_every_maskclip_config_builds(path):
    cfg = Config.fromfile(path)
    # random initialisation of the full-size models is skipped (slow, and
    # these weights are never used): building must not need the CLIP file
    with mock.patch.multiple(torch.nn.init, kaiming_uniform_=_no_init,
                             normal_=_no_init, uniform_=_no_init,
                             trunc_normal_=_no_init, zeros_=_no_init):
        model = MODELS.build(cfg.model)
    head = model.decode_head
    assert type(model).__name__ == 'EncoderDecoder'
    assert type(head).__name__ == 'MaskClipHead'
    assert head.num_classes == len(head.class_names)
    assert model.backbone.pretrained == head.clip_pretrained
    assert osp.basename(head.clip_pretrained) in (
        'RN50.pt', 'RN50x16.pt', 'ViT-B-16.pt')
    assert head.vit == (type(model.backbone).__name__ ==
                        'CLIPVisionTransformer')
    assert len(head.templates) == 85
    kspd = path.endswith('_kspd.py')
    assert (head.ks_thresh, head.pd_thresh) == ((1.0, 0.5) if kspd else
                                                (0., 0.))
    assert cfg.test_cfg.type == 'TestLoop' and cfg.model.test_cfg.mode == \
        'whole'
    assert cfg.custom_imports.imports == ['denseclip']  # default_runtime
    dataset = cfg.test_dataloader.dataset
    classes = (dataset.get('metainfo') or {}).get('classes') or \
        DATASETS.get(dataset.type).METAINFO['classes']
    assert len(classes) == head.num_classes
    from mmcv.transforms import Compose
    assert len(Compose(dataset.pipeline).transforms) == 4


@pytest.fixture(scope='module')
def toy_voc(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('voc'))
    make_toy_dataset(root, layout='voc', num_train=1, num_val=3)
    return root


def toy_voc_config(vit_clip, toy_voc, tmp_path):
    """The ViT VOC config on the toy CLIP and the toy VOC-layout dataset."""
    from maskclip_helpers import toy_maskclip_cfg
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/maskclip/maskclip_vit16_512x512_voc12aug_20.py'))
    cfg.model = toy_maskclip_cfg(vit_clip, 'voc20',
                                 cache_dir=str(tmp_path / 'cache'))
    for loader in (cfg.test_dataloader, cfg.val_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_root = toy_voc
    cfg.work_dir = str(tmp_path / 'work')
    path = str(tmp_path / 'maskclip_toy_voc.py')
    cfg.dump(path)
    return path


def test_tools_test_reports_miou_on_toy_voc(vit_clip, toy_voc, tmp_path):
    config = toy_voc_config(vit_clip, toy_voc, tmp_path)
    checkpoint = convert_clip_weights.main(
        [vit_clip.jit, '--config', config, '--out',
         str(tmp_path / 'maskclip_toy.pth')])
    state = torch.load(checkpoint, weights_only=True)['state_dict']
    assert 'decode_head.text_embeddings' in state
    assert state['decode_head.text_embeddings'].shape == (20, 32)
    metrics = test_tool.main([config, checkpoint, '--work-dir',
                              str(tmp_path / 'work')])
    assert 0 <= metrics['mIoU'] <= 100


def test_tools_test_without_checkpoint_reads_the_clip_file(
        vit_clip, toy_voc, tmp_path):
    """`tools/test.py CONFIG`: MaskCLIP has no trained weights, so the model
    is initialised from its config, i.e. from the CLIP file."""
    config = toy_voc_config(vit_clip, toy_voc, tmp_path)
    metrics = test_tool.main([config, '--work-dir', str(tmp_path / 'work')])
    assert 0 <= metrics['mIoU'] <= 100


def test_runner_test_without_checkpoint_reads_the_clip_file(
        vit_clip, toy_voc, tmp_path):
    """mmengine's test loop never calls init_weights: the model reads its
    CLIP file at the first forward (stock mmseg tools, init_model)."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(toy_voc_config(vit_clip, toy_voc, tmp_path))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 0 <= metrics['mIoU'] <= 100
    assert runner.model.backbone.load_report is not None


# -------------------------------------------------------------- the demo
def test_demo_writes_an_overlay_of_the_input_and_a_legend(vit_clip, toy_voc,
                                                         tmp_path):
    image = osp.join(toy_voc, 'JPEGImages', '2007_val000000.jpg')
    out = str(tmp_path / 'result.png')
    rc = maskclip_demo.main([
        image, '--classes', 'red disc, white car,東京タワー,café',
        '--clip', vit_clip.jit, '--out', out, '--templates', 'single',
        '--text-heads', '4', '--cache-dir', str(tmp_path / 'cache'),
        '--ks', '--pd'])
    assert rc == 0
    drawn, original = cv2.imread(out), cv2.imread(image)
    h, w = original.shape[:2]
    # a small image: the legend in a panel beside it
    assert drawn.shape[0] == h and drawn.shape[1] > w
    assert np.abs(drawn[:, :w].astype(int) - original).mean() > 5  # overlay


def test_demo_on_a_folder_writes_a_folder(rn_clip, toy_voc, tmp_path):
    out = str(tmp_path / 'results')
    rc = maskclip_demo.main([
        osp.join(toy_voc, 'JPEGImages'), '--classes', 'sky,tree', '--clip',
        rn_clip.jit, '--out', out, '--templates', 'single', '--text-heads',
        '4', '--cache-dir', str(tmp_path / 'cache')])
    assert rc == 0
    written = sorted(osp.basename(p) for p in glob.glob(f'{out}/*.png'))
    assert written == [f'2007_{s}.png' for s in
                       ('train000000', 'val000000', 'val000001',
                        'val000002')]


@pytest.mark.parametrize('classes, message', [
    ('', 'no class names'), (' , ,', 'no class names'),
    ('sky', 'at least two class names')])
def test_demo_without_class_names_is_an_error(vit_clip, toy_voc, tmp_path,
                                              capsys, classes, message):
    image = osp.join(toy_voc, 'JPEGImages', '2007_val000000.jpg')
    with pytest.raises(SystemExit) as exit_info:
        maskclip_demo.main([image, '--classes', classes, '--clip',
                            vit_clip.jit, '--out', str(tmp_path / 'r.png')])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_with_a_too_long_class_name_is_an_error(vit_clip, toy_voc,
                                                    tmp_path, capsys):
    image = osp.join(toy_voc, 'JPEGImages', '2007_val000000.jpg')
    with pytest.raises(SystemExit) as exit_info:
        maskclip_demo.main([image, '--classes', 'sky,' + 'very ' * 80 + 'car',
                            '--clip', vit_clip.jit, '--templates', 'single',
                            '--cache-dir', str(tmp_path),
                            '--out', str(tmp_path / 'r.png')])
    assert exit_info.value.code == 2
    assert 'tokens' in capsys.readouterr().err
    assert not (tmp_path / 'r.png').exists()


def test_demo_on_an_unreadable_image_names_it(vit_clip, tmp_path, capsys):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not an image')
    rc = maskclip_demo.main([
        str(bad), '--classes', 'sky,tree', '--clip', vit_clip.jit, '--out',
        str(tmp_path / 'r.png'), '--templates', 'single', '--text-heads', '4',
        '--cache-dir', str(tmp_path / 'cache')])
    assert rc == 1
    assert f'cannot read image {bad}' in capsys.readouterr().err
    assert not (tmp_path / 'r.png').exists()
    # in a folder: the readable images are still written
    folder = tmp_path / 'in'
    folder.mkdir()
    (folder / 'broken.png').write_bytes(b'not an image')
    cv2.imwrite(str(folder / 'good.jpg'), np.full((40, 50, 3), 90, np.uint8))
    rc = maskclip_demo.main([
        str(folder), '--classes', 'sky,tree', '--clip', vit_clip.jit, '--out',
        str(tmp_path / 'out'), '--templates', 'single', '--text-heads', '4',
        '--cache-dir', str(tmp_path / 'cache')])
    assert rc == 1
    assert f'cannot read image {folder / "broken.png"}' in \
        capsys.readouterr().err
    assert cv2.imread(str(tmp_path / 'out' / 'good.png')).shape[0] == 40
    with pytest.raises(SystemExit) as exit_info:
        maskclip_demo.main([str(tmp_path / 'missing.jpg'), '--classes',
                            'sky,tree', '--clip', vit_clip.jit, '--out',
                            'r.png'])
    assert exit_info.value.code == 2
    assert 'missing.jpg does not exist' in capsys.readouterr().err


def test_demo_says_truncated_when_the_file_ends_early(rn_clip, tmp_path,
                                                     capsys):
    encoded = cv2.imencode('.jpg', np.random.default_rng(0).integers(
        0, 256, (40, 50, 3), dtype=np.uint8))[1].tobytes()
    cut = tmp_path / 'download.jpg'
    cut.write_bytes(encoded[:len(encoded) // 2])
    rc = maskclip_demo.main([
        str(cut), '--classes', 'sky,tree', '--clip', rn_clip.jit, '--out',
        str(tmp_path / 'r.png')])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f'maskclip_demo: cannot read image {cut}: truncated: the JPEG file '
        'ends early (PIL: image file is truncated (')
    assert len(err.splitlines()) == 1


def test_demo_reads_sub_folders_as_the_folder_tool_does(rn_clip, tmp_path,
                                                        capsys):
    """Every image under the folder (ImageFolderDataset's list), written
    under the same relative path; an earlier run's output folder inside
    the input is not read."""
    from denseclip.datasets import list_images
    folder = tmp_path / 'photos'
    for name in ('a.jpg', 'sub/b.PNG', 'sub/deeper/c.png', '.hidden/d.png'):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / name), np.full((30, 40, 3), 90, np.uint8))
    out = folder / 'results'
    args = [str(folder), '--classes', 'sky,tree', '--clip', rn_clip.jit,
            '--out', str(out), '--templates', 'single', '--cache-dir',
            str(tmp_path / 'cache')]
    for _ in range(2):  # the second run finds the first one's output
        assert maskclip_demo.main(args) == 0
        written = sorted(osp.relpath(p, out) for p in glob.glob(
            f'{out}/**/*.png', recursive=True))
        assert written == ['a.png', 'sub/b.png', 'sub/deeper/c.png']
        printed = capsys.readouterr().out
        assert printed.count(' -> ') == 3
    assert sorted(p for p in list_images(str(folder))
                  if '/results/' not in p) == sorted(
        str(folder / n) for n in ('a.jpg', 'sub/b.PNG', 'sub/deeper/c.png'))


# ---------------------------------------------- the reference's file tools
def test_prompt_engineering_writes_the_heads_embeddings(vit_clip, tmp_path):
    names = tmp_path / 'names.txt'
    names.write_text('\n'.join(NAMES) + '\n\n', encoding='utf-8')
    out = prompt_engineering.main([
        vit_clip.jit, '--class-set', str(names), '--no-prompt-eng',
        '--text-heads', '4', '--no-cache', '--out', str(tmp_path / 't.pth')])
    embeddings = torch.load(out, weights_only=True)
    assert isinstance(embeddings, torch.Tensor)
    assert embeddings.dtype == torch.float32 and embeddings.shape == (4, 32)
    model = build_maskclip(vit_clip, cache_dir=str(tmp_path / 'cache'))
    head_logits(model, torch.zeros(1, 3, 64, 64))
    torch.testing.assert_close(embeddings, model.decode_head.text_embeddings)
    out = prompt_engineering.main([
        vit_clip.jit, '--class-set', 'voc20', '--text-heads', '4',
        '--no-cache', '--out',
        str(tmp_path / 'voc.pth')])
    assert torch.load(out, weights_only=True).shape == (20, 32)


def test_convert_writes_the_reference_projection_file(rn_clip, tmp_path):
    out = convert_clip_weights.main(
        [rn_clip.jit, '--out', str(tmp_path / 'RN_clip_weights.pth')])
    projs = torch.load(out, weights_only=True)
    assert sorted(projs) == ['c_proj', 'k_proj', 'q_proj', 'v_proj']
    pool = rn_clip.model.visual.attnpool
    for name in projs:
        assert sorted(projs[name]) == ['bias', 'weight']
        torch.testing.assert_close(projs[name]['weight'],
                                   getattr(pool, name).weight)
    cache = str(tmp_path / 'cache')
    image = torch.randn(1, 3, 64, 64)
    expected = head_logits(build_maskclip(rn_clip, cache_dir=cache), image)
    model = build_maskclip(rn_clip, cache_dir=cache, visual_projs_path=out)
    torch.testing.assert_close(head_logits(model, image), expected)
    assert model.decode_head.projections_source == out
