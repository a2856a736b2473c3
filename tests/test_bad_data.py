"""Bad data stops with a message naming the file, class or setting at fault
(or works); nothing partial is left on disk. docs/bad_data.md lists these
cases; each has a test here (or, where named there, in another file)."""
import glob
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from conftest import tiny_denseclip_cfg
from maskclip_helpers import toy_maskclip_cfg
from mmengine.config import ConfigDict
from mmengine.runner import Runner
from mmseg.registry import MODELS
from tiny_runner import mmengine_log, runner_cfg, write_dataset

from denseclip.datasets import BadLabelError, SampleError
from denseclip.engine import add_data_checks, setup_train_run
from denseclip.models.segmentors import TrainingFreeSegmentor
from denseclip.clip import zero_shot
from denseclip.clip.prompt_class_names import (read_class_name_file,
                                               resolve_class_names)
from denseclip_helpers import load_tool

maskclip_demo = load_tool('maskclip_demo')


# --- datasets ----------------------------------------------------------------
@pytest.fixture
def data(tmp_path):
    """The tiny dataset (4 + 4 PNGs of 32x32, classes 0/1) to damage."""
    root = str(tmp_path / 'data')
    write_dataset(root)
    return root


def image(root, i=1, split='train'):
    return osp.join(root, 'img_dir', split, f'{i}.png')


def annotation(root, i=1, split='train'):
    return osp.join(root, 'ann_dir', split, f'{i}.png')


def truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def train(root, work_dir, **overrides):
    """Two iterations through tools/train.py's set-up (data checks on)."""
    cfg = runner_cfg(root, str(work_dir), 'bad_data', max_iters=2,
                     **overrides)
    setup_train_run(cfg, 'none', False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def nothing_written(work_dir):
    return not glob.glob(osp.join(str(work_dir), '*.pth*'))


@pytest.mark.parametrize('damage, error, message', [
    ('garbage image', SampleError, r'image {img}, annotation {ann}: '
     r'AssertionError: failed to load image'),
    ('truncated image', SampleError, r'image {img}, annotation {ann}: '
     r'AssertionError: failed to load image'),
    ('truncated annotation', SampleError,
     r'image {img}, annotation {ann}: OSError: image file is truncated'),
    ('empty image', FileNotFoundError,
     r'the train dataset \(BaseSegDataset in {root}\) lists files that are '
     r'missing or empty:\n  image {img} \(empty\)'),
    ('missing annotation', FileNotFoundError,
     r'lists files that are missing or empty:\n  annotation {ann} '
     r'\(missing\)'),
    ('labels above num_classes', BadLabelError,
     r'annotation {ann} has label values outside \[0, 2\) that are not the '
     r'ignore index 255: 7: 10 px, 200: 1014 px\. The model has '
     r'model\.decode_head\.num_classes=2'),
])
def test_a_broken_sample_stops_training_naming_its_file(
        data, tmp_path, damage, error, message):
    # every training sample broken the same way: the first one read fails
    for i in range(4):
        img, ann = image(data, i), annotation(data, i)
        if damage == 'garbage image':
            with open(img, 'wb') as f:
                f.write(os.urandom(300))
        elif damage == 'truncated image':
            truncate(img)
        elif damage == 'truncated annotation':
            truncate(ann)
        elif damage == 'empty image':
            open(img, 'wb').close()
        elif damage == 'missing annotation':
            os.remove(ann)
        else:
            label = cv2.imread(ann, cv2.IMREAD_UNCHANGED)
            label[:] = 200
            label[0, :10] = 7
            cv2.imwrite(ann, label)
    work_dir = tmp_path / 'work'
    with pytest.raises(error) as info:
        train(data, work_dir)
    pattern = message.format(root=re.escape(data), img=r'\S+/img_dir/train/'
                             r'\d\.png', ann=r'\S+/ann_dir/train/\d\.png')
    assert re.search(pattern, str(info.value)), str(info.value)
    assert nothing_written(work_dir)


def test_ignore_index_and_images_smaller_than_the_crop_work(data, tmp_path):
    """255 is ignored, not an error; images smaller than the training crop
    and the slide window train and test (padded)."""
    for i in range(4):
        label = cv2.imread(annotation(data, i), cv2.IMREAD_UNCHANGED)
        label[:8] = 255
        cv2.imwrite(annotation(data, i), label)
    for i in range(4):  # validation images 20x24 < slide crop 48x48
        cv2.imwrite(image(data, i, 'val'), np.zeros((20, 24, 3), np.uint8))
        cv2.imwrite(annotation(data, i, 'val'), np.ones((20, 24), np.uint8))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='RandomCrop', crop_size=(48, 48)),
                dict(type='PackSegInputs')]
    runner = train(data, tmp_path / 'work', train_pipeline=pipeline)
    runner.model.test_cfg = ConfigDict(mode='slide', crop_size=(48, 48),
                                       stride=(32, 32))
    metrics = runner.test()
    assert 0 <= metrics['mIoU'] <= 100
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')


def test_label_check_goes_after_load_annotations_everywhere(data):
    cfg = runner_cfg(data, 'w', 'x')
    cfg.test_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='TestTimeAug', transforms=[
            [dict(type='Resize', scale=(32, 32), keep_ratio=True)],
            [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])]
    add_data_checks(cfg)
    add_data_checks(cfg)  # idempotent
    check = dict(type='CheckSegLabels', num_classes=2, ignore_index=255,
                 source='model.decode_head.num_classes=2')
    train = cfg.train_dataloader.dataset.pipeline
    assert len(train) == 1 and train[0]['type'] == 'NameFilesOnError'
    assert [t['type'] for t in train[0]['transforms']] == [
        'LoadImageFromFile', 'LoadAnnotations', 'CheckSegLabels',
        'PackSegInputs']
    assert train[0]['transforms'][2] == check
    tta = cfg.test_dataloader.dataset.pipeline[0]['transforms'][1]
    # TestTimeAug's lists are alternatives: the check gets a list of its own
    assert tta['transforms'][1:3] == [[dict(type='LoadAnnotations')],
                                      [check]]
    assert len(tta['transforms']) == 4
    assert [h['type'] for h in cfg.custom_hooks] == ['CheckDataFilesHook']


# --- class names ---------------------------------------------------------------
def test_class_name_file_blank_lines_and_bom_work(tmp_path):
    path = tmp_path / 'names.txt'
    path.write_bytes('\ufeffsky\n\n  red car \r\n\t\ncafé au lait\n'.encode())
    assert read_class_name_file(str(path)) == ['sky', 'red car',
                                               'café au lait']
    assert resolve_class_names(str(path)) == ['sky', 'red car',
                                              'café au lait']


@pytest.mark.parametrize('content, message', [
    (b'sky\ntree\n\nsky\n', r"'sky' is on line 1 and again on line 4"),
    (b'sky\ntr\xe9e\n', r'line 2: byte 0xe9 at column 3 is not UTF-8'),
    (b'\n  \n', r'holds no class names'),
])
def test_a_bad_class_name_file_is_named(tmp_path, content, message):
    path = tmp_path / 'names.txt'
    path.write_bytes(content)
    with pytest.raises(ValueError,
                       match=rf'class name file {re.escape(str(path))}[:,]? '
                       rf'.*{message}'):
        resolve_class_names(str(path))


def test_denseclip_class_names_must_match_the_head(rn_clip):
    with pytest.raises(ValueError, match=r'DenseCLIP: 3 class names but '
                       r'num_classes=4 \(model\.decode_head\.num_classes\)'
                       r'; model\.class_names'):
        MODELS.build(tiny_denseclip_cfg(rn_clip.shape,
                                        class_names=['a', 'b', 'c']))
    with pytest.raises(ValueError, match=r'the class list holds no class '
                       r'names; model\.class_names'):
        MODELS.build(tiny_denseclip_cfg(rn_clip.shape, class_names=[]))
    with pytest.raises(ValueError, match=r"class name 'b' is class 1 and "
                       r'class 3'):
        MODELS.build(tiny_denseclip_cfg(rn_clip.shape,
                                        class_names=['a', 'b', 'c', 'b']))


def test_maskclip_class_names_must_match_the_head(rn_clip, tmp_path):
    with pytest.raises(ValueError, match=r'the class list holds no class '
                       r'names'):
        toy_maskclip_cfg(rn_clip, names=[], cache_dir=str(tmp_path))
    cfg = toy_maskclip_cfg(rn_clip, cache_dir=str(tmp_path))
    cfg.decode_head.num_classes = 5
    cfg.decode_head.text_categories = 5
    with pytest.raises(ValueError, match=r'4 class names but num_classes=5 '
                       r'\(decode_head\.num_classes\); '
                       r'decode_head\.class_names'):
        MODELS.build(cfg)


# --- zero-shot text embeddings: memory bounded, progress ---------------------
def test_many_prompts_are_encoded_in_bounded_chunks(rn_clip):
    """40 names x 85 templates (3,400 prompts): the tower never sees more
    than batch_size prompts at once, the result equals one big batch, and
    progress is logged."""
    tower = zero_shot.build_clip_text_tower(
        rn_clip.jit, dict(transformer_heads=rn_clip.shape['transformer_heads']))
    from denseclip.clip.prompt_templates import get_templates
    templates = get_templates('imagenet85')
    names = [f'thing {i}' for i in range(40)]
    seen = []
    forward = tower.forward

    def counting(tokens, *args, **kwargs):
        seen.append(tokens.shape[0])
        return forward(tokens, *args, **kwargs)

    tower.forward = counting
    with mmengine_log() as records:
        chunked = zero_shot.encode_prompts(tower, names, templates,
                                           batch_size=256)
    assert max(seen) <= 256 and sum(seen) == 40 * 85
    assert chunked.shape == (40, rn_clip.shape['embed_dim'])
    tower.forward = forward
    whole = zero_shot.encode_prompts(tower, names, templates,
                                     batch_size=40 * 85)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    progress = [r for r in records if r.startswith('encoded ')]
    assert progress[-1] == 'encoded 40/40 class names (3400 prompts)'
    assert 5 <= len(progress) <= 10


# --- tools/maskclip_demo.py ---------------------------------------------------
def demo_args(image, out, clip, cache, *extra):
    return [image, '--clip', clip.jit, '--out', out, '--templates', 'single',
            '--text-heads', str(clip.shape['transformer_heads']),
            '--cache-dir', cache, *extra]


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp('photos')
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    files = dict(rgb=img, gray=gray, rgba=np.dstack([img, np.full(
        (48, 64), 77, np.uint8)]), rgb16=img.astype(np.uint16) * 257,
        gray16=gray.astype(np.uint16) * 257, gray_as_rgb=cv2.cvtColor(
            gray, cv2.COLOR_GRAY2BGR))
    for name, array in files.items():
        cv2.imwrite(str(folder / f'{name}.png'), array)
    return folder


@pytest.mark.parametrize('kind, same_as', [
    ('gray', 'gray_as_rgb'), ('rgba', 'rgb'), ('rgb16', 'rgb'),
    ('gray16', 'gray_as_rgb')])
def test_demo_reads_grayscale_rgba_and_16_bit_images(rn_clip, photo, tmp_path,
                                                     kind, same_as):
    """Grayscale becomes colour, alpha is dropped, 16 bits become 8: the
    result equals the demo's on the 8-bit colour image of the same picture."""
    outs = []
    for name in (kind, same_as):
        out = str(tmp_path / f'{name}.png')
        assert maskclip_demo.main(demo_args(
            str(photo / f'{name}.png'), out, rn_clip, str(tmp_path / 'c'),
            '--classes', 'sky,tree,car')) == 0
        outs.append(cv2.imread(out, cv2.IMREAD_UNCHANGED))
    assert outs[0].shape[0] == 48 and outs[0].shape[2] == 3
    assert outs[0].dtype == np.uint8
    assert np.abs(outs[0].astype(int) - outs[1]).max() <= 2
    assert not glob.glob(str(tmp_path / '*.partial'))


def test_demo_bad_class_name_file_is_named(rn_clip, photo, tmp_path, capsys):
    names = tmp_path / 'names.txt'
    names.write_bytes(b'sky\n\xff\xfetree\n')
    out = str(tmp_path / 'r.png')
    with pytest.raises(SystemExit) as info:
        maskclip_demo.main(demo_args(str(photo / 'rgb.png'), out, rn_clip,
                                     str(tmp_path), '--classes-file',
                                     str(names)))
    assert info.value.code == 2
    assert f'class name file {names}, line 2: byte 0xff' in \
        capsys.readouterr().err
    assert not osp.exists(out)


def test_demo_with_1000_class_names(rn_clip, photo, tmp_path, monkeypatch):
    """Works; logits reach the image size 64 classes at a time (the same
    labels as mmseg's inference_model, test_demo_chunks_equal_...), the
    legend lists the classes present."""
    names = tmp_path / 'names.txt'
    names.write_text('\n'.join(f'object {i}' for i in range(1000)))
    widths = []
    resize_scores = TrainingFreeSegmentor.resize_scores

    def spy(self, seg_logits, metas):
        widths.append(seg_logits.shape[1])
        return resize_scores(self, seg_logits, metas)

    monkeypatch.setattr(TrainingFreeSegmentor, 'resize_scores', spy)
    out = str(tmp_path / 'r.png')
    with mmengine_log() as log:
        assert maskclip_demo.main(demo_args(
            str(photo / 'rgb.png'), out, rn_clip, str(tmp_path / 'c'),
            '--classes-file', str(names))) == 0
    painted = cv2.imread(out)  # the legend beside the image: 30 rows at most
    assert painted.shape[0] >= 48 and painted.shape[1] > 64
    assert max(widths) == 64 and sum(widths) == 1000
    assert 'encoded 1000/1000 class names (1000 prompts)' in log


def test_demo_chunks_equal_inference_model(rn_clip, photo, tmp_path):
    """predict_labels, a few classes at a time, gives mmseg's labels
    (inference_model with mmseg's own post-processing, class_chunk=None):
    random head outputs, so that every class wins somewhere."""
    from mmseg.apis import inference_model
    args = maskclip_demo.make_parser().parse_args(demo_args(
        str(photo / 'rgb.png'), 'x.png', rn_clip, str(tmp_path),
        '--classes', 'a,b,c,d,e,f,g'))
    model = maskclip_demo.build_model(args, list('abcdefg'))
    logits = torch.randn(1, 7, 6, 8, generator=torch.Generator().manual_seed(0))
    model.decode_head.forward = lambda feats: logits
    img = cv2.imread(str(photo / 'rgb.png'))
    model.test_cfg.class_chunk = None
    expected = inference_model(model, img).pred_sem_seg.data[0]
    assert expected.unique().numel() == 7
    for chunk in (2, 3, 64):
        model.test_cfg.class_chunk = chunk
        assert torch.equal(maskclip_demo.predict_labels(model, img), expected)


def test_legend_with_many_classes_lists_those_present():
    names = [f'n{i}' for i in range(100)]
    shares = [0.0] * 100
    shares[7], shares[3], shares[50] = 0.5, 0.3, 0.2
    palette = maskclip_demo.make_palette(100)
    shown, values, colours = maskclip_demo.legend_entries(names, shares,
                                                          palette, 30)
    assert shown == ['n7', 'n3', 'n50']
    assert values == [0.5, 0.3, 0.2]
    assert colours == [palette[7], palette[3], palette[50]]
    assert maskclip_demo.legend_entries(names[:5], shares[:5], palette[:5],
                                        30)[0] == ['n3']
    # more present than rows: the last row counts the rest present
    shares = [0.01] * 40 + [0.0] * 60
    shown, values, _ = maskclip_demo.legend_entries(names, shares, palette,
                                                    30)
    assert shown == names[:29] + ['... 11 more classes']
    assert values[-1] == pytest.approx(0.11)
