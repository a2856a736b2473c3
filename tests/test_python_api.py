"""mmseg's init_model / inference_model and SegLocalVisualizer on every
config family (DenseCLIP with a checkpoint, MaskCLIP, MaskCLIP+ with a
student checkpoint, each training-free method with and without PAMR), the
public builder ``denseclip.apis.training_free_model``, and the README's
Python example as it is written. Tiny CLIP files throughout."""
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config, DictAction
from mmseg.apis import inference_model, init_model
from mmseg.visualization import SegLocalVisualizer

from denseclip.apis import dataset_meta_of, training_free_model
from denseclip.toy.clip_model import (TRAINED_RESNET, build_openai_clip,
                                      write_clip_checkpoint)
from denseclip.toy.data import TOY_CLASSES
from denseclip_helpers import REPO

IMAGE_SHAPE = (45, 61)
PAMR = dict(type='PAMR', num_iter=2, dilations=(1, 2))


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = str(tmp_path_factory.mktemp('photo') / 'photo.jpg')
    cv2.imwrite(path, rng.integers(0, 256, IMAGE_SHAPE + (3, ),
                                   dtype=np.uint8))
    return path


def check_result(model, result, photo, out_file, meta=None):
    """The labels of the photo's size, in range; a painted file written."""
    meta = meta or dataset_meta_of(model)
    labels = result.pred_sem_seg.data
    assert labels.shape == (1, ) + IMAGE_SHAPE
    assert 0 <= int(labels.min()) and \
        int(labels.max()) < len(meta['classes'])
    visualizer = SegLocalVisualizer(
        name=f'api_{osp.basename(out_file)}', alpha=0.5)
    visualizer.dataset_meta = meta
    image = cv2.imread(photo)[:, :, ::-1]
    visualizer.add_datasample('photo', image, result, draw_gt=False,
                              out_file=out_file)
    painted = cv2.imread(out_file)
    assert painted.shape[:2] == IMAGE_SHAPE
    assert np.abs(painted.astype(int) - image[:, :, ::-1]).mean() > 1


def _vit_options(clip):
    """cfg_options that put a ViT-B/16 config on the tiny ViT CLIP."""
    shape = clip.shape
    return {
        'model.backbone.pretrained': clip.jit,
        'model.backbone.input_resolution': shape['image_resolution'],
        'model.backbone.patch_size': shape['vision_patch_size'],
        'model.backbone.width': shape['vision_width'],
        'model.backbone.layers': shape['vision_layers'],
        'model.backbone.heads': 1,
        'model.backbone.output_dim': shape['embed_dim'],
        'model.decode_head.in_channels': shape['vision_width'],
        'model.decode_head.text_channels': shape['embed_dim'],
        'model.decode_head.clip_pretrained': clip.jit,
        'model.decode_head.templates': 'single',
    }


# ------------------------------------------------- training-free configs
@pytest.mark.parametrize('pamr', [False, True], ids=['no_pamr', 'pamr'])
@pytest.mark.parametrize('method', ['maskclip', 'sclip', 'clearclip',
                                    'naclip', 'scclip', 'proxyclip'])
def test_init_model_on_each_training_free_config(vit_clip, tiny_vfm, photo,
                                                 tmp_path, method, pamr):
    from test_ovss_configs import tiny_scclip_layers, tiny_vfm_options
    config = osp.join(REPO, 'configs', 'ovss', method,
                      f'{method}_vit-b16_voc21.py')
    options = _vit_options(vit_clip)
    options['model.decode_head.text_cache_dir'] = str(tmp_path)
    for option in (tiny_scclip_layers(method) +
                   tiny_vfm_options(method, tiny_vfm)):
        key, value = option.split('=', 1)
        options[key] = DictAction._parse_iterable(value)  # as --cfg-options
    cfg = Config.fromfile(config)
    cfg.model.pamr = PAMR if pamr else None  # a dict over None: no merge
    model = init_model(cfg, None, device='cpu', cfg_options=options)
    assert type(model).__name__ == 'TrainingFreeSegmentor'
    assert (model.pamr is not None) == pamr
    result = inference_model(model, photo)
    check_result(model, result, photo, str(tmp_path / 'painted.png'))
    assert len(dataset_meta_of(model)['classes']) == 21


@pytest.mark.parametrize('config, clip', [
    ('maskclip_vit16_512x512_voc12aug_20.py', 'vit'),
    ('maskclip_r50_512x512_voc12aug_20.py', 'rn')])
def test_init_model_on_maskclip_configs(vit_clip, rn_clip, photo, tmp_path,
                                        config, clip):
    if clip == 'vit':
        options = _vit_options(vit_clip)
    else:
        shape = rn_clip.shape
        options = {
            'model.backbone.pretrained': rn_clip.jit,
            'model.backbone.layers': list(shape['vision_layers']),
            'model.backbone.width': shape['vision_width'],
            'model.backbone.output_dim': shape['embed_dim'],
            'model.backbone.input_resolution': shape['image_resolution'],
            'model.decode_head.in_channels': shape['vision_width'] * 32,
            'model.decode_head.text_channels': shape['embed_dim'],
            'model.decode_head.clip_pretrained': rn_clip.jit,
            'model.decode_head.templates': 'single'}
    options['model.decode_head.text_cache_dir'] = str(tmp_path)
    model = init_model(osp.join(REPO, 'configs', 'maskclip', config), None,
                       device='cpu', cfg_options=options)
    assert type(model).__name__ == 'EncoderDecoder'
    result = inference_model(model, photo)
    check_result(model, result, photo, str(tmp_path / 'painted.png'))
    assert len(dataset_meta_of(model)['classes']) == 20


# ---------------------------------------------- models with a checkpoint
def _save_checkpoint(model, path):
    """A checkpoint as the runner writes it: weights and dataset_meta."""
    meta = dict(dataset_meta=dict(classes=tuple(TOY_CLASSES),
                                  palette=[[10 * k, 200 - 10 * k, 40]
                                           for k in range(len(TOY_CLASSES))]))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return meta['dataset_meta']


def test_init_model_on_denseclip_with_a_checkpoint(photo, tmp_path):
    config = osp.join(REPO, 'configs', 'toy', 'denseclip_toy.py')
    options = {'model.class_names': list(TOY_CLASSES)}
    torch.manual_seed(0)
    trained = init_model(config, None, device='cpu', cfg_options=options)
    ckpt = str(tmp_path / 'denseclip_toy.pth')
    meta = _save_checkpoint(trained, ckpt)
    model = init_model(config, ckpt, device='cpu', cfg_options=options)
    assert type(model).__name__ == 'DenseCLIP'
    assert model.dataset_meta == meta
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    result = inference_model(model, photo)
    check_result(model, result, photo, str(tmp_path / 'painted.png'), meta)


def test_init_model_on_maskclip_plus_with_a_student_checkpoint(photo,
                                                               tmp_path):
    clip = write_clip_checkpoint(build_openai_clip(seed=5, **TRAINED_RESNET),
                                 str(tmp_path / 'toy_RN.pt'))
    config = osp.join(REPO, 'configs', 'toy', 'maskclip_plus_toy.py')
    options = {'model.teacher.backbone.pretrained': clip,
               'model.teacher.decode_head.clip_pretrained': clip,
               'model.teacher.decode_head.templates': 'single',
               'model.teacher.decode_head.text_cache_dir': str(tmp_path)}
    torch.manual_seed(0)
    student = init_model(config, None, device='cpu', cfg_options=options)
    student.init_weights()  # as training starts: the teacher's embeddings
    ckpt = str(tmp_path / 'maskclip_plus_toy.pth')
    meta = _save_checkpoint(student, ckpt)
    model = init_model(config, ckpt, device='cpu', cfg_options=options)
    assert type(model).__name__ == 'MaskClipPlus'
    assert model.dataset_meta == meta
    result = inference_model(model, photo)
    check_result(model, result, photo, str(tmp_path / 'painted.png'), meta)


# ------------------------------------------------ the public builder
@pytest.mark.parametrize('method, pamr', [
    ('maskclip', False), ('sclip', True), ('clearclip', False),
    ('naclip', True), ('proxyclip', True)])
def test_training_free_model_is_ready_for_mmseg_apis(vit_clip, tiny_vfm,
                                                     photo, tmp_path, method,
                                                     pamr):
    vfm = tiny_vfm if method == 'proxyclip' else None
    model = training_free_model(
        vit_clip.jit, 'sky|cloud,tree,red car', method, 'cpu', pamr=pamr,
        templates='single', text_cache_dir=str(tmp_path), vfm=vfm)
    assert (model.vfm is not None) == (method == 'proxyclip')
    assert model.cfg.method == method and not model.training
    assert (model.pamr is not None) == pamr
    assert model.decode_head.class_name_sets.synonyms == (
        ('sky', 'cloud'), ('tree', ), ('red car', ))
    assert model.dataset_meta['classes'] == ('sky, cloud', 'tree', 'red car')
    assert len(model.dataset_meta['palette']) == 3
    check_result(model, inference_model(model, photo), photo,
                 str(tmp_path / 'painted.png'))


def test_training_free_model_hides_mmsegs_build_warnings(vit_clip, tmp_path):
    """mmseg warns on every head it builds (build_loss deprecated,
    avg_non_ignore); users cannot act on it: shown with verbose=True only.
    The caller's own warning filters are left as they were."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        training_free_model(vit_clip.jit, ['a', 'b'], 'maskclip',
                            templates='single', text_cache_dir=str(tmp_path))
        warnings.warn('the caller\'s own', UserWarning)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages
                if 'build_loss' in m or 'avg_non_ignore' in m], messages
    assert "the caller's own" in messages
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        training_free_model(vit_clip.jit, ['a', 'b'], 'maskclip',
                            templates='single', text_cache_dir=str(tmp_path),
                            verbose=True)
    messages = [str(w.message) for w in caught]
    assert [m for m in messages if 'build_loss' in m], messages


def test_training_free_model_defaults_to_naclip_on_a_vit_maskclip_on_rn(
        vit_clip, rn_clip, tmp_path):
    vit = training_free_model(vit_clip.jit, ['a', 'b'], templates='single',
                              text_cache_dir=str(tmp_path))
    rn = training_free_model(rn_clip.jit, ['a', 'b'], templates='single',
                             text_cache_dir=str(tmp_path))
    assert (vit.cfg.method, rn.cfg.method) == ('naclip', 'maskclip')
    assert vit.cfg.test_pipeline[1]['scale'] == (2048, 336)
    assert rn.cfg.test_pipeline[1]['scale'] == (2048, 512)


def test_training_free_model_names_bad_input(vit_clip, rn_clip, tmp_path):
    with pytest.raises(FileNotFoundError, match='CLIP file nowhere.pt'):
        training_free_model('nowhere.pt', 'a,b')
    with pytest.raises(ValueError, match="unknown training-free method "
                       "'segformer'"):
        training_free_model(vit_clip.jit, 'a,b', 'segformer')
    with pytest.raises(ValueError, match='CLIP ResNet; naclip'):
        training_free_model(rn_clip.jit, 'a,b', 'naclip')
    with pytest.raises(ValueError, match='palette has 1 colours for 2'):
        training_free_model(vit_clip.jit, 'a,b', palette=[[0, 0, 0]],
                            templates='single', text_cache_dir=str(tmp_path))


# ------------------------------------------------- the README's example
def readme_example() -> str:
    """The code block of README.md's "Python API" section."""
    text = open(osp.join(REPO, 'README.md'), encoding='utf-8').read()
    section = text.split('\n## Python API\n', 1)[1].split('\n## ', 1)[0]
    blocks = re.findall(r'```python\n(.*?)```', section, re.S)
    assert len(blocks) == 1, blocks
    return blocks[0]


def test_readme_example_segments_a_photo_and_saves_it(vit_clip, photo,
                                                      tmp_path,
                                                      monkeypatch):
    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    out_file = str(tmp_path / 'photo_seg.png')
    for name, path in (('pretrained/ViT-B-16.pt', vit_clip.jit),
                       ('photo_seg.png', out_file), ('photo.jpg', photo)):
        assert f"'{name}'" in code, name
        code = code.replace(f"'{name}'", repr(path))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    painted = cv2.imread(out_file)
    assert painted is not None and painted.shape[:2] == IMAGE_SHAPE
    labels = namespace['result'].pred_sem_seg.data
    assert labels.shape == (1, ) + IMAGE_SHAPE and int(labels.max()) < 4
