"""MaskCLIP+ on a folder of images without annotations: ImageFolderDataset,
UnlabeledSegMap, the web-image configs and tools/maskclip_plus_folder.py."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from denseclip_helpers import load_tool
from mmengine.config import Config
from mmseg.registry import DATASETS, MODELS

from denseclip.datasets import (UNLABELED_INDEX, ImageFolderDataset,
                                UnlabeledSegMap, UnreadableImageError,
                                read_image, why_unreadable)
from denseclip.visualization import (draw_legend, legend_entries,
                                     make_palette, overlay_labels)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
WEB_CONFIGS = sorted(glob.glob(
    osp.join(REPO, 'configs/maskclip_plus/web_image/*.py')))
TOY_CONFIG = osp.join(REPO, 'configs/toy/maskclip_plus_folder_toy.py')
TOY_NAMES = ('textured background,red disc,green square,blue triangle,'
             'yellow ring')


@pytest.fixture(scope='module')
def tool():
    return load_tool('maskclip_plus_folder')


def write_images(folder, sizes):
    """Random images of ``sizes`` ``[(H, W), ...]`` (a 2-D size: grayscale)
    under ``folder``; returns their paths."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        shape = tuple(size) + (() if len(size) == 3 else (3, ))
        path = str(folder / f'img{i}.png')
        cv2.imwrite(path, rng.integers(0, 256, shape, dtype=np.uint8))
        paths.append(path)
    return paths


def write_truncated(path, size=(40, 60), ext='.jpg'):
    """An image file cut in the middle of its data (an interrupted
    download), ``ext`` its format."""
    rng = np.random.default_rng(1)
    encoded = cv2.imencode(ext, rng.integers(0, 256, size + (3, ),
                                             dtype=np.uint8))[1].tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded[:len(encoded) // 2])
    return str(path)


# ------------------------------------------------------------ the data
def test_read_image_says_why_it_cannot(tmp_path):
    """As mmseg's LoadImageFromFile reads it (OpenCV); what is wrong as PIL
    tells it: truncated, empty, not an image."""
    good = write_images(tmp_path, [(12, 8)])[0]
    assert read_image(good).shape == (12, 8, 3)
    assert why_unreadable(good) is None
    for ext, kind in (('.jpg', 'JPEG'), ('.png', 'PNG')):
        cut = write_truncated(tmp_path / f'cut{ext}', ext=ext)
        assert why_unreadable(cut).startswith(
            f'truncated: the {kind} file ends early (PIL: ')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    text = tmp_path / 'notes.jpg'
    text.write_text('not an image')
    assert why_unreadable(str(empty)) == 'an empty file'
    assert why_unreadable(str(text)).startswith('not an image file')
    with pytest.raises(UnreadableImageError,
                       match=f'cannot read image {text}: not an image file'):
        read_image(str(text))


def test_unlabeled_seg_map_is_the_images_size_and_unlabeled_everywhere():
    for img in (np.zeros((7, 11, 3), np.uint8), np.zeros((5, 3), np.uint8)):
        out = UnlabeledSegMap().transform(dict(img=img, seg_fields=[]))
        assert out['gt_seg_map'].shape == img.shape[:2]
        assert out['gt_seg_map'].dtype == np.uint8
        assert (out['gt_seg_map'] == UNLABELED_INDEX).all()
        assert out['seg_fields'] == ['gt_seg_map']
    with pytest.raises(ValueError, match=r'unlabeled_index must lie in'):
        UnlabeledSegMap(unlabeled_index=255)


def test_dataset_lists_every_image_and_gives_all_unlabeled_maps(tmp_path):
    folder = tmp_path / 'images'
    write_images(folder, [(20, 30), (12, 8)])
    write_images(folder / 'sub', [(9, 16)])
    (folder / 'sub' / 'img0.png').rename(folder / 'sub' / 'photo.PNG')
    (folder / 'notes.txt').write_text('not an image')
    (folder / '.hidden.png').write_bytes(b'')
    dataset = ImageFolderDataset(
        data_prefix=dict(img_path=str(folder)),
        metainfo=dict(classes=('cat', 'sky')),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='UnlabeledSegMap')])
    assert [osp.relpath(d['img_path'], str(folder))
            for d in dataset.load_data_list()] == [
                'img0.png', 'img1.png', 'sub/photo.PNG']
    sizes = []
    for i in range(len(dataset)):
        sample = dataset[i]
        assert 'seg_map_path' not in sample
        assert sample['gt_seg_map'].shape == sample['img'].shape[:2]
        assert (sample['gt_seg_map'] == UNLABELED_INDEX).all()
        sizes.append(sample['gt_seg_map'].shape)
    assert sizes == [(20, 30), (12, 8), (9, 16)]
    assert dataset.metainfo['classes'] == ('cat', 'sky')


def test_dataset_errors_name_the_folder(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError, match=f'no image .* under {empty}'):
        ImageFolderDataset(data_prefix=dict(img_path=str(empty)),
                           metainfo=dict(classes=('a', 'b')))
    with pytest.raises(FileNotFoundError,
                       match=f'image folder {tmp_path}/nope does not exist'):
        ImageFolderDataset(data_prefix=dict(img_path=str(tmp_path / 'nope')),
                           metainfo=dict(classes=('a', 'b')))
    with pytest.raises(ValueError, match='reads images only'):
        ImageFolderDataset(data_prefix=dict(img_path=str(empty),
                                            seg_map_path=str(empty)),
                           metainfo=dict(classes=('a', 'b')))


@pytest.mark.parametrize('path', WEB_CONFIGS + [TOY_CONFIG], ids=osp.basename)
def test_configs_keep_the_maskclip_plus_recipe(path, tmp_path):
    """Annotation-free from a folder: the unlabeled map right after loading
    the image, the teacher labels the crop before the colour distortion,
    a self-training label only where the teacher agrees."""
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'MaskClipPlus'
    assert cfg.model.unseen_classes is None
    assert cfg.model.self_train_agreement is True
    assert cfg.model.teacher is None  # the tool's to fill in
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'ImageFolderDataset'
    steps = [s['type'] for s in dataset.pipeline]
    assert steps[:2] == ['LoadImageFromFile', 'UnlabeledSegMap']
    assert 'LoadAnnotations' not in steps and 'MarkUnlabeled' not in steps
    assert steps.index('KeepUndistortedImage') + 1 == steps.index(
        'PhotoMetricDistortion')
    assert 'img_undistorted' in dataset.pipeline[-1]['meta_keys']
    assert cfg.get('val_cfg') is None  # nothing to validate against
    # the folder's samples go through the whole train pipeline
    folder = tmp_path / 'images'
    write_images(folder, [(40, 60)])
    dataset.update(data_prefix=dict(img_path=str(folder)),
                   metainfo=dict(classes=('a', 'b')))
    packed = DATASETS.build(dataset)[0]
    gt = packed['data_samples'].gt_sem_seg.data
    assert set(gt.unique().tolist()) <= {UNLABELED_INDEX, 255}
    assert (gt == UNLABELED_INDEX).any()
    assert 'img_undistorted' in packed['data_samples'].metainfo


def test_web_image_configs_follow_the_reference():
    """ViT-B/16 teacher, DeepLabv2 student (R-101 / R-50), crops of 512,
    300 iterations of SGD at 0.01 with poly decay, 4 images a batch."""
    assert [osp.basename(p) for p in WEB_CONFIGS] == [
        'maskclip_plus_vit16_deeplabv2_r101_512x512_300_web_image.py',
        'maskclip_plus_vit16_deeplabv2_r50_512x512_300_web_image.py']
    for path, depth in zip(WEB_CONFIGS, (101, 50)):
        cfg = Config.fromfile(path)
        assert cfg.model.backbone.depth == depth
        assert cfg.model.backbone.init_cfg.checkpoint == \
            f'open-mmlab://resnet{depth}_v1c'
        assert cfg.model.decode_head.decode_module == dict(
            type='ASPPV2Head', dilations=(6, 12, 18, 24), norm_act=True)
        assert cfg.crop_size == (512, 512)
        assert cfg.clip_file == 'pretrained/ViT-B-16.pt'
        assert cfg.train_cfg.max_iters == 300
        assert cfg.param_scheduler[0].end == 300
        assert cfg.optim_wrapper.optimizer.lr == 0.01
        assert cfg.train_dataloader.batch_size == 4
        assert cfg.model.self_train_from == -1  # as the reference's


def test_reference_class_name_files_read():
    from denseclip.clip.prompt_class_names import read_class_name_file
    folder = osp.join(REPO, 'configs/maskclip_plus/web_image/class_names')
    counts = {osp.basename(p)[:-4]: len(read_class_name_file(p))
              for p in glob.glob(osp.join(folder, '*.txt'))}
    assert counts == dict(batman=7, batman_ext=26, blur=20, car_brands=23,
                          gates=7, mario=7, mickey=7, sports=17)


# ----------------------------------------------------------- the tool
def test_schedule_keeps_its_shape(tool):
    cfg = Config.fromfile(TOY_CONFIG)
    tool.scale_schedule(cfg, 30)
    warmup, poly = cfg.param_scheduler
    assert (warmup.begin, warmup.end, poly.begin, poly.end) == (0, 3, 3, 30)
    assert cfg.model.self_train_from == 20  # 200 of 300
    assert cfg.train_cfg.max_iters == 30 and cfg.iters == 30
    assert cfg.default_hooks.checkpoint.interval == 30
    tool.scale_schedule(cfg, 1)
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 1), (0, 1)]
    assert cfg.model.self_train_from == 1


def test_built_config_has_folder_names_and_a_teacher_from_the_clip_file(
        tool, vit_clip, tmp_path):
    folder = tmp_path / 'images'
    write_images(folder, [(10, 10)])
    args = tool.make_parser().parse_args(
        [str(folder), '--classes', 'Batman, Joker ,sky', '--clip',
         vit_clip.jit, '--iters', '30', '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', 'train_dataloader.batch_size=2'])
    plan = tool.check_arguments(args, pytest.fail)
    assert plan.names == ['Batman', 'Joker', 'sky']
    cfg = tool.build_config(args, plan)
    teacher = cfg.model.teacher
    assert teacher.backbone.type == 'CLIPVisionTransformer'
    assert teacher.backbone.pretrained == osp.abspath(vit_clip.jit)
    assert teacher.decode_head.class_names == ['Batman', 'Joker', 'sky']
    embed = vit_clip.shape['embed_dim']
    assert (cfg.model.decode_head.num_classes, cfg.model.decode_head.channels,
            cfg.model.decode_head.text_channels) == (3, embed, embed)
    assert cfg.train_dataloader.dataset.data_prefix.img_path == str(folder)
    assert cfg.train_dataloader.dataset.metainfo.classes == [
        'Batman', 'Joker', 'sky']
    assert cfg.train_cfg.max_iters == 30
    assert cfg.train_dataloader.batch_size == 2
    # the header's CLIP line: the heads and where they came from
    assert teacher.backbone.heads == 1  # the file's (width 64)
    assert '4 heads; heads read from the file; activation quick_gelu' in \
        tool.teacher_clip(cfg).describe()
    assert cfg.work_dir == osp.join(str(tmp_path / 'w'), 'train')
    # the R-101 student and the ViT teacher build (structure only)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.backbone.depth == 101
    assert model.teacher.num_classes == 3
    # the written config reads back the same
    path = str(tmp_path / 'c.py')
    with open(path, 'w') as f:
        f.write(cfg.pretty_text)
    assert Config.fromfile(path).model.teacher == teacher


def tool_error(tool, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        tool.run(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_errors_are_clear_and_come_before_any_work(tool, rn_clip, tmp_path,
                                                   capsys):
    folder = tmp_path / 'images'
    write_images(folder, [(10, 10)])
    empty = tmp_path / 'empty'
    empty.mkdir()
    work = ['--work-dir', str(tmp_path / 'w')]
    clip = ['--clip', rn_clip.jit]
    err = tool_error(tool, [str(empty), '--classes', 'a,b'] + clip + work,
                     capsys)
    assert f'{empty} holds no images' in err
    err = tool_error(tool, [str(tmp_path / 'nope'), '--classes', 'a,b'] +
                     clip + work, capsys)
    assert 'nope does not exist' in err
    err = tool_error(tool, [str(folder), '--classes', 'cat'] + clip + work,
                     capsys)
    assert 'at least two class names' in err and "['cat']" in err
    err = tool_error(tool, [str(folder), '--classes', ' , '] + clip + work,
                     capsys)
    assert 'no class names given' in err
    missing = str(tmp_path / 'ViT-X.pt')
    err = tool_error(tool, [str(folder), '--classes', 'a,b', '--clip',
                            missing] + work, capsys)
    assert f'CLIP file {missing} does not exist' in err
    err = tool_error(tool, [str(folder), '--classes', 'a,b', '--out',
                            str(folder / 'painted')] + clip + work, capsys)
    assert '--out' in err and 'inside the image folder' in err
    err = tool_error(tool, [str(folder), '--classes', 'a,b', '--iters', '0']
                     + clip + work, capsys)
    assert '--iters must be at least 1' in err
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'broken.jpg').write_bytes(b'not a jpeg')
    write_truncated(broken / 'sub' / 'cut.jpg')
    err = tool_error(tool, [str(broken), '--classes', 'a,b'] + clip + work,
                     capsys)
    assert f'none of the 2 image(s) of {broken} can be read: ' in err
    assert f'{broken}/broken.jpg: not an image file' in err
    assert f'{broken}/sub/cut.jpg: truncated: the JPEG file ends early' in err
    assert not (tmp_path / 'w').exists()  # nothing written


def test_unreadable_images_are_skipped_not_trained_on(tool, rn_clip,
                                                      tmp_path):
    """A scraped folder with a truncated download and an empty file among
    good images: the run goes on without them; the config's dataset leaves
    them out, so that training never meets them."""
    folder = tmp_path / 'scraped'
    good = write_images(folder, [(20, 30), (16, 16)])
    cut = write_truncated(folder / 'sub' / 'cut.jpg')
    (folder / 'zero.png').write_bytes(b'')
    args = tool.make_parser().parse_args(
        [str(folder), '--classes', 'a,b', '--clip', rn_clip.jit,
         '--work-dir', str(tmp_path / 'w')])
    plan = tool.check_arguments(args, pytest.fail)
    assert plan.images == good
    assert [(p, r.split(':')[0]) for p, r in plan.skipped] == [
        (cut, 'truncated'), (str(folder / 'zero.png'), 'an empty file')]
    cfg = tool.build_config(args, plan)
    assert cfg.train_dataloader.dataset.exclude == ['sub/cut.jpg',
                                                    'zero.png']
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert [d['img_path'] for d in dataset.load_data_list()] == good
    assert dataset[1]['data_samples'].gt_sem_seg.data.ndim == 3  # reads


@pytest.mark.slow
@pytest.mark.integration
def test_tool_trains_saves_and_paints_the_folder(tool, shared_toy_files,
                                                 tmp_path, capsys):
    """Two iterations of the toy recipe on three images of different sizes
    (one grayscale) without annotations and a truncated one (skipped),
    through tools/train.py; the folder painted by the student with the
    demo's overlay and legend."""
    folder = tmp_path / 'my images'
    sizes = [(120, 150), (90, 70), (64, 96)]
    toy_images = sorted(glob.glob(osp.join(
        shared_toy_files.data_root, 'images', 'validation', '*.jpg')))[:3]
    folder.mkdir()
    for i, (src, size) in enumerate(zip(toy_images, sizes)):
        image = cv2.resize(cv2.imread(src), size[::-1])
        if i == 2:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        cv2.imwrite(str(folder / f'photo{i}.{"jpg" if i else "png"}'), image)
    cut = write_truncated(folder / 'photo3.jpg')  # skipped, listed
    work_dir, out = tmp_path / 'work', tmp_path / 'painted'
    result = tool.run([
        str(folder), '--classes', TOY_NAMES, '--clip',
        shared_toy_files.clip_file, '--config', TOY_CONFIG, '--iters', '2',
        '--work-dir', str(work_dir), '--out', str(out), '--device', 'cpu',
        '--cfg-options', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'])
    printed = capsys.readouterr().out
    assert 'Iter(train) [2/2]' in printed  # the runner's progress lines
    assert f'3 images in {folder} (1 unreadable skipped' in printed
    assert (f'skipped:    1 unreadable image(s), not trained on or '
            f'painted:\n  {cut}: truncated: the JPEG file ends early') in \
        printed
    assert result.skipped == [(cut, result.skipped[0][1])]
    assert result.checkpoint == str(work_dir / 'train' / 'iter_2.pth')
    state = torch.load(result.checkpoint, map_location='cpu',
                       weights_only=False)['state_dict']
    assert not any(k.startswith('teacher') for k in state)
    assert result.config == str(work_dir / 'maskclip_plus_folder.py')
    assert result.failed == []
    assert result.painted == [str(out / f'photo{i}.png') for i in range(3)]
    assert not glob.glob(str(out / '.*'))  # no temporary files left

    # the painting: the student's labels, overlaid and with the legend as
    # tools/maskclip_demo.py paints them (denseclip.visualization)
    from mmseg.apis import inference_model
    cfg = Config.fromfile(result.config)
    model = tool.load_student(cfg, result.checkpoint, 'cpu')
    names = TOY_NAMES.split(',')
    palette = make_palette(len(names))
    for path, size in zip(result.painted, sizes):
        painted = cv2.imread(path)
        source = sorted(glob.glob(str(folder / (osp.basename(path)[:-4] +
                                                '.*'))))[0]
        image = cv2.imread(source)
        labels = inference_model(model, image).pred_sem_seg.data[0].numpy()
        assert labels.shape == size
        overlay = overlay_labels(image, labels, [c[::-1] for c in palette],
                                 0.5)
        shares = np.bincount(labels.ravel(), minlength=len(names)) / \
            labels.size
        expected = draw_legend(overlay.copy(),
                               *legend_entries(names, shares, palette),
                               bgr=True)
        np.testing.assert_array_equal(painted, expected)
        # images this small: the overlay as it is, the legend beside it
        h, w = size
        assert painted.shape[0] >= h and painted.shape[1] > w
        np.testing.assert_array_equal(painted[:h, :w], overlay)
        assert painted[:, w:].max() > 200  # white legend text
