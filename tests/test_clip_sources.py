"""The table of named CLIP sources (denseclip/clip/files.py): names,
sources, activations, where files land and how a file is traced back."""
import os
import os.path as osp

import pytest

from denseclip.clip import files as clip_files

# open_clip's src/open_clip/pretrained.py (mlfoundations/open_clip 89fb801):
# hf_hub id and quick_gelu of the weight sets the table names
OPEN_CLIP = {
    'RN50': ('timm/resnet50_clip.openai', True),
    'RN101': ('timm/resnet101_clip.openai', True),
    'ViT-B/16': ('timm/vit_base_patch16_clip_224.openai', True),
    'ViT-L/14': ('timm/vit_large_patch14_clip_224.openai', True),
    'ViT-L/14@336px': ('timm/vit_large_patch14_clip_336.openai', True),
    'ViT-B-16/metaclip_fullcc': ('timm/vit_base_patch16_clip_224.metaclip_2pt5b', True),
    'ViT-L-14/metaclip_fullcc': ('timm/vit_large_patch14_clip_224.metaclip_2pt5b', True),
    'ViT-L-14/dfn2b': ('apple/DFN2B-CLIP-ViT-L-14', True),
    'ViT-H-14/laion2b_s32b_b79k': ('laion/CLIP-ViT-H-14-laion2B-s32B-b79K', False),
    'ViT-H-14/metaclip_altogether': ('timm/vit_huge_patch14_clip_224.metaclip_altogether', False),
    'ViT-H-14/dfn5b': ('apple/DFN5B-CLIP-ViT-H-14', True),
    'ViT-L-14/laion2b_s32b_b82k': ('laion/CLIP-ViT-L-14-laion2B-s32B-b82K', False),
}


@pytest.mark.parametrize('name', sorted(OPEN_CLIP))
def test_open_clip_repos_and_activations(name):
    repo, quick = OPEN_CLIP[name]
    entry = clip_files.get(name)
    hub = [s for s in entry.sources if s.layout == clip_files.OPEN_CLIP]
    assert [s.repo for s in hub] == [repo]
    assert hub[0].filenames == ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')
    expected = 'quick_gelu' if quick else 'gelu'
    assert {s.activation for s in entry.sources} == {expected}
    assert entry.activation == expected


def test_every_source_is_complete():
    for entry in clip_files.CLIP_FILES.values():
        assert entry.sources, entry.name
        for source in entry.sources:
            assert source.layout in ('openai', 'open_clip', 'transformers')
            assert source.activation in ('quick_gelu', 'gelu')
            assert source.size_mb > 100
            if source.kind == 'openai-url':
                assert entry.sources[0] is source  # tried first
                assert source.url.split('/')[-2] == source.sha256
                assert source.layout == 'openai'
            else:
                assert source.kind == 'hf-hub' and source.sha256 is None
                assert source.repo.count('/') == 1 and source.filenames
        # the names a file may land under are unique across the table
    names = [n for e in clip_files.CLIP_FILES.values() for n in e.file_names()]
    assert len(names) == len(set(names))


def test_transformers_sources_of_openai_weights():
    repos = {n: s.repo for n in clip_files.openai_names()
             for s in clip_files.get(n).sources if s.layout == 'transformers'}
    assert repos == {'ViT-B/32': 'openai/clip-vit-base-patch32',
                     'ViT-B/16': 'openai/clip-vit-base-patch16',
                     'ViT-L/14': 'openai/clip-vit-large-patch14',
                     'ViT-L/14@336px': 'openai/clip-vit-large-patch14-336'}
    source = clip_files.get('ViT-B/16').sources[-1]
    assert source.filenames == ('model.safetensors', 'pytorch_model.bin')


@pytest.mark.parametrize('given, expected', [
    ('ViT-B-16', 'ViT-B/16'), ('ViT-B-16/openai', 'ViT-B/16'),
    ('ViT-L-14-336/openai', 'ViT-L/14@336px'),
    ('vit-b-16/METACLIP_FULLCC', 'ViT-B-16/metaclip_fullcc'),
    ('ViT-B-16-metaclip_fullcc.safetensors', 'ViT-B-16/metaclip_fullcc'),
    ('pretrained/ViT-B-16.bin', 'ViT-B/16'), ('ViT-B-16-hf', 'ViT-B/16'),
    ('ViT-H-14/laion2b_s32b_b79k', 'ViT-H-14/laion2b_s32b_b79k'),
])
def test_resolve_names(given, expected):
    assert clip_files.resolve_name(given) == expected


def test_where_files_land():
    b16 = clip_files.get('ViT-B-16')
    assert b16.file_names() == ['ViT-B-16.pt', 'ViT-B-16.safetensors', 'ViT-B-16.bin',
                                'ViT-B-16-hf']
    assert clip_files.get('ViT-H-14/laion2b_s32b_b79k').filename == \
        'ViT-H-14-laion2b_s32b_b79k.safetensors'


def test_source_for_file():
    pick = clip_files.source_for_file
    entry, source = pick('pretrained/ViT-B-16.pt')
    assert (entry.name, source.layout, source.activation) == ('ViT-B/16', 'openai', 'quick_gelu')
    entry, source = pick('/data/ViT-H-14-laion2b_s32b_b79k.safetensors')
    assert (entry.name, source.layout, source.activation) == (
        'ViT-H-14/laion2b_s32b_b79k', 'open_clip', 'gelu')
    cached = ('/home/u/.cache/huggingface/hub/models--apple--DFN2B-CLIP-ViT-L-14/'
              'snapshots/0123abc/open_clip_pytorch_model.bin')
    entry, source = pick(cached)
    assert (entry.name, source.activation) == ('ViT-L-14/dfn2b', 'quick_gelu')
    folder = ('/c/models--openai--clip-vit-large-patch14/snapshots/abc')
    assert pick(folder)[1].layout == 'transformers'
    assert pick(folder + '/config.json')[0].name == 'ViT-L/14'
    assert pick('pretrained/ViT-B-16-hf/model.safetensors')[1].layout == 'transformers'
    sha = clip_files.get('RN101').sha256
    assert pick('anything/renamed.pt', sha256=sha)[0].name == 'RN101'
    assert pick('pretrained/mine.pt') is None
    assert pick('/c/models--someone--else/snapshots/abc/x.bin') is None


def test_find_clip_file_and_clip_file_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs('pretrained/ViT-B-16-hf')
    # a config's pretrained/ViT-B-16.pt finds what the hub gave
    open('pretrained/ViT-B-16.safetensors', 'wb').close()
    for given in ('ViT-B/16', 'ViT-B-16', 'pretrained/ViT-B-16.pt'):
        assert clip_files.find_clip_file(given) == osp.join('pretrained', 'ViT-B-16.safetensors')
        assert clip_files.clip_file_for(given) == osp.join('pretrained', 'ViT-B-16.safetensors')
    os.remove('pretrained/ViT-B-16.safetensors')
    # a transformers folder counts only with its config.json
    with pytest.raises(FileNotFoundError, match='download_clip.py ViT-B/16`'):
        clip_files.find_clip_file('ViT-B-16')
    open('pretrained/ViT-B-16-hf/config.json', 'w').close()
    assert clip_files.find_clip_file('ViT-B-16') == osp.join('pretrained', 'ViT-B-16-hf')
    # missing paths that are no name stay as they are, for the loader's message
    assert clip_files.clip_file_for('my/own.pt') == 'my/own.pt'
    assert clip_files.clip_file_for(None) is None
    with pytest.raises(FileNotFoundError, match='download_clip.py --list'):
        clip_files.find_clip_file('my/own.pt')
    with pytest.raises(FileNotFoundError, match='ViT-H-14-dfn5b.safetensors'):
        clip_files.clip_file_for('ViT-H-14/dfn5b')


def test_openai_base_url_override(monkeypatch):
    source = clip_files.get('RN50').openai
    monkeypatch.delenv(clip_files.OPENAI_BASE_URL_ENV, raising=False)
    assert source.effective_url() == source.url
    monkeypatch.setenv(clip_files.OPENAI_BASE_URL_ENV, 'http://mirror.local/clip')
    assert source.effective_url() == f'http://mirror.local/clip/{source.sha256}/RN50.pt'
