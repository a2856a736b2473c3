"""The toy VFM (denseclip.toy.vfm_*): DINO's key layout, its forward, its
self-supervised training and cache, and the affinity score."""
import os
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import copy_toy_files
from denseclip.toy.data import draw_toy_scene
from denseclip.toy.vfm_affinity import (patch_classes, same_class_share,
                                        summarize_shares)
from denseclip.toy.vfm_model import ToyViT
from denseclip.toy.vfm_training import (ToyVFMRecipe, build_toy_vit,
                                        load_toy_vfm, toy_vfm_path,
                                        train_toy_vfm, train_vfm)

# a few steps of a small ViT on small views: seconds on 2 cores
TINY = ToyVFMRecipe(width=64, depth=2, image_size=32, steps=6, batch_size=8,
                    warmup=1, lr=2e-3, prototypes=16, head_hidden=64,
                    head_bottleneck=32, num_images=8)


def _toy_images(n=8, size=64, seed=0):
    rng = np.random.default_rng(seed)
    images = np.stack([draw_toy_scene(rng, (size, size))[0]
                       for _ in range(n)])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def _expected_shapes(width, depth, side, patch, hidden):
    shapes = {
        'cls_token': (1, 1, width),
        'pos_embed': (1, 1 + side * side, width),
        'patch_embed.proj.weight': (width, 3, patch, patch),
        'patch_embed.proj.bias': (width, ),
        'norm.weight': (width, ),
        'norm.bias': (width, ),
    }
    for i in range(depth):
        for name, shape in (('norm1.weight', (width, )),
                            ('norm1.bias', (width, )),
                            ('attn.qkv.weight', (3 * width, width)),
                            ('attn.qkv.bias', (3 * width, )),
                            ('attn.proj.weight', (width, width)),
                            ('attn.proj.bias', (width, )),
                            ('norm2.weight', (width, )),
                            ('norm2.bias', (width, )),
                            ('mlp.fc1.weight', (hidden, width)),
                            ('mlp.fc1.bias', (hidden, )),
                            ('mlp.fc2.weight', (width, hidden)),
                            ('mlp.fc2.bias', (width, ))):
            shapes[f'blocks.{i}.{name}'] = shape
    return shapes


def test_state_dict_is_dino_layout():
    vit = ToyViT(patch_size=8, width=128, depth=3, image_size=96)
    got = {k: tuple(v.shape) for k, v in vit.state_dict().items()}
    assert got == _expected_shapes(128, 3, 12, 8, 512)
    assert vit.blocks[0].attn.heads == 2  # one per 64 channels, as DINO
    for module in vit.modules():
        if isinstance(module, torch.nn.LayerNorm):
            assert module.eps == 1e-6
    assert isinstance(vit.blocks[0].mlp.act, torch.nn.GELU)
    assert vit.blocks[0].mlp.act.approximate == 'none'


def test_attention_splits_heads_as_timm():
    torch.manual_seed(0)
    vit = ToyViT(patch_size=8, width=128, depth=1, image_size=32)
    attn = vit.blocks[0].attn
    x = torch.randn(2, 5, 128)
    qkv = attn.qkv(x).reshape(2, 5, 3, 2, 64)  # (B, N, 3, heads, C/heads)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    w = (q @ k.transpose(-2, -1) / 8).softmax(-1)
    want = attn.proj((w @ v).transpose(1, 2).reshape(2, 5, 128))
    torch.testing.assert_close(attn(x), want, atol=1e-5, rtol=1e-5)


def test_forward_gives_patch_feature_maps():
    vit = build_toy_vit(TINY).eval()
    with torch.no_grad():
        square = vit(torch.randn(2, 3, 32, 32))
        other = vit(torch.randn(1, 3, 40, 60))
        tokens = vit.tokens(torch.randn(1, 3, 40, 60))
    assert square.shape == (2, 64, 4, 4)
    assert other.shape == (1, 64, 5, 7)  # 60 // 8: the rest is dropped
    assert tokens.shape == (1, 1 + 35, 64)


def test_patch_features_are_normed_last_tokens():
    vit = build_toy_vit(TINY).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        tokens = vit.norm(vit.blocks[1](vit.blocks[0](
            torch.cat([vit.cls_token, vit.patch_embed(x).flatten(2)
                       .transpose(1, 2)], 1) + vit.pos_embed)))
        features = vit(x)
    torch.testing.assert_close(features.flatten(2).transpose(1, 2),
                               tokens[:, 1:])


def test_training_reduces_the_loss():
    # the teacher frozen (momentum 1) and no centring: the target stands
    # still, so the student's loss must fall (DINO's own target moves, and
    # over a few steps its loss need not)
    recipe = TINY.replace(steps=10, ema=1.0, center_momentum=1.0)
    _, summary = train_vfm(recipe, _toy_images(), log=None)
    losses = summary['losses']
    assert len(losses) == 10
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1


def test_progress_lines():
    lines = []
    train_vfm(TINY.replace(steps=5), _toy_images(4), log=lines.append,
              log_every=2)
    assert len(lines) == 3
    for k, line in zip((2, 4, 5), lines):
        pattern = rf'\[toy-vfm\] step {k}/5 loss \d+\.\d{{4}}  '
        assert re.match(pattern, line), line


def test_training_is_seeded():
    images = _toy_images(4)
    a, _ = train_vfm(TINY.replace(steps=2), images, log=None)
    b, _ = train_vfm(TINY.replace(steps=2), images, log=None)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_share_is_one_for_one_hot_features():
    rng = np.random.default_rng(0)
    label = np.repeat(np.repeat(rng.integers(0, 4, (6, 7)), 4, 0), 4, 1)
    classes = patch_classes(label, (6, 7), 4)
    assert torch.equal(classes, torch.from_numpy(label[::4, ::4]).flatten())
    one_hot = F.one_hot(classes, 4).t().float().reshape(4, 6, 7)
    share = same_class_share(one_hot, classes)
    torch.testing.assert_close(share, torch.ones(42))
    random = same_class_share(torch.randn(16, 6, 7,
                                          generator=torch.Generator()
                                          .manual_seed(0)), classes)
    assert random.mean() < 0.6
    summary = summarize_shares([share, random], [classes, classes])
    assert summary['patch'] == pytest.approx(
        (1 + random.mean().item()) / 2, abs=1e-6)
    assert summary['masked'] == 0


def test_patch_class_is_the_majority():
    label = np.zeros((4, 8), np.uint8)
    label[:3, :3] = 2  # 9 of the first patch's 16 pixels
    label[:2, 4:7] = 1  # 6 of the second's
    assert patch_classes(label, (1, 2), 4).tolist() == [2, 0]


def test_train_toy_vfm_writes_a_plain_state_dict_and_caches(
        shared_toy_files, tmp_path):
    work_dir = str(tmp_path / 'toy')
    copy_toy_files(shared_toy_files, work_dir)
    lines = []
    path = train_toy_vfm(work_dir, steps=2, recipe=TINY, log=lines.append)
    assert path == toy_vfm_path(work_dir, 0)
    assert path.endswith(os.path.join('vfm', 'toy_vfm.pth'))
    state = torch.load(path, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == \
        _expected_shapes(64, 2, 4, 8, 256)
    assert any(line.startswith('[toy-vfm] step 2/2 loss') for line in lines)
    mtime = os.stat(path).st_mtime_ns
    lines.clear()
    assert train_toy_vfm(work_dir, steps=2, recipe=TINY,
                         log=lines.append) == path
    assert os.stat(path).st_mtime_ns == mtime
    assert lines[0].startswith('[toy-vfm] reusing')
    with torch.no_grad():
        x = torch.randn(1, 3, 40, 48)
        vit = load_toy_vfm(path)
        reference = ToyViT(8, 64, 2, 32)
        reference.load_state_dict(state)
        torch.testing.assert_close(vit(x), reference.eval()(x))
    # another recipe is trained anew
    train_toy_vfm(work_dir, steps=1, recipe=TINY, log=None)
    assert os.stat(path).st_mtime_ns != mtime


def test_no_file_under_the_final_name_when_training_or_saving_fails(
        shared_toy_files, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'toy')
    copy_toy_files(shared_toy_files, work_dir)
    path = toy_vfm_path(work_dir, 0)

    def stop(line):
        if 'step 2/2' in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_toy_vfm(work_dir, steps=2, recipe=TINY, log=stop)
    assert not os.path.exists(path)

    def half_save(obj, f, *args, **kwargs):
        with open(f, 'wb') as out:
            out.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', half_save)
    with pytest.raises(OSError, match='disk full'):
        train_toy_vfm(work_dir, steps=1, recipe=TINY, log=None)
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.splitext(path)[0] + '.json')
    assert os.listdir(os.path.dirname(path)) == []


def test_tool_tables_give_mean_and_worst_seed():
    from denseclip_helpers import load_tool
    tool = load_tool('toy_vfm')
    scores = {row: {s: dict(class_mean=0.5 + 0.1 * s + 0.01 * i,
                            per_class={0: 0.9, 3: 0.2 + 0.1 * s})
                    for s in (0, 1)}
              for i, row in enumerate(tool.ROWS)}
    lines = tool.score_table(scores, [0, 1], 'class_mean')
    assert lines[0] == '| model | seed 0 | seed 1 | mean | worst |'
    assert lines[2] == f'| {tool.ROWS[0]} | 0.500 | 0.600 | 0.550 | 0.500 |'
    assert len(lines) == 2 + len(tool.ROWS)
    classes = tool.class_table(scores, [0, 1])
    assert classes[2] == f'| {tool.ROWS[0]} | 0.900 | - | - | 0.250 | - |'


def test_corresponding_points_follow_the_crops():
    from denseclip.toy.vfm_training import corresponding_points
    grid = 4
    whole = torch.tensor([[0., 0., 1., 1.]])
    flipped = torch.tensor([[0., 0., -1., 1.]])
    left_half = torch.tensor([[-0.5, 0., 0.5, 1.]])
    feature_map = torch.arange(16.).view(1, 1, 4, 4)

    def sample(points):
        return F.grid_sample(feature_map, points, align_corners=False)[0, 0]

    points, inside = corresponding_points(whole, whole, grid)
    assert inside.all()
    torch.testing.assert_close(sample(points), feature_map[0, 0])
    points, inside = corresponding_points(whole, flipped, grid)
    torch.testing.assert_close(sample(points), feature_map[0, 0].flip(1))
    # the left half of the image, seen by a view of the whole image: its
    # patch centres fall on the whole view's left two columns
    points, inside = corresponding_points(left_half, whole, grid)
    assert inside.all()
    torch.testing.assert_close(points[0, 0, :, 0],
                               torch.tensor([-0.875, -0.625, -0.375, -0.125]))
    # and the whole image's right half lies outside the left-half view
    _, inside = corresponding_points(whole, left_half, grid)
    assert inside[0, :, :2].all() and not inside[0, :, 2:].any()


@pytest.mark.parametrize('size', [(32, 32), (40, 72), (96, 64)])
def test_toy_vfm_file_loads_into_the_vision_foundation_model(tmp_path, size):
    # the toy configs give the toy VFM's file to VisionFoundationModel: it
    # must read the architecture from the tensors alone, take every tensor,
    # and give the ToyViT's features at the training size and at others
    # (DINO's position interpolation on both sides)
    from denseclip.vfm import VisionFoundationModel
    vit = build_toy_vit(TINY, seed=3).eval()
    path = str(tmp_path / 'toy_vfm.pth')
    torch.save(vit.state_dict(), path)
    vfm = VisionFoundationModel(pretrained=path, input_norm='imagenet')
    vfm.init_weights()
    assert (vfm.patch_size, vfm.width, vfm.heads, len(vfm.blocks)) == \
        (8, 64, 1, 2)
    assert vfm.arch.image_size == 32
    report = vfm.load_report
    assert sorted(report.loaded) == sorted(vit.state_dict())
    assert not (report.missing or report.unexpected or report.unused)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(vfm(x), vit(x), atol=1e-5, rtol=1e-5)
