"""The table of named VFM weights, finding them in pretrained/, and
tools/download_vfm.py against a hub served on 127.0.0.1 (the fake hub of
tests/test_download_hub.py)."""
import importlib.util
import io
import os
import os.path as osp
from contextlib import redirect_stdout

import pytest
import torch
from safetensors.torch import save

from denseclip.vfm import VFM_FILES, VisionFoundationModel, find_vfm_file
from denseclip.vfm import files as vfm_files
from test_download_hub import hub, sha  # noqa: F401  (the fake hub fixture)
from test_vfm_errors import _dino_state

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO_ROOT, 'tools', 'download_vfm.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('download_vfm_test', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def test_table():
    assert list(VFM_FILES)[:3] == ['dino_vitb8', 'dino_vitb16',
                                   'dinov2_vitb14_reg']
    b8, b16, reg = (VFM_FILES[n] for n in list(VFM_FILES)[:3])
    assert [s.repo for s in b8.sources] == ['timm/vit_base_patch8_224.dino',
                                            'facebook/dino-vitb8']
    assert [s.repo for s in reg.sources] == [
        'timm/vit_base_patch14_reg4_dinov2.lvd142m',
        'facebook/dinov2-with-registers-base']
    assert tuple(b16.arch) == (16, 768, 12, 12, 4.0, 0, False, 224, 'dino')
    assert tuple(reg.arch) == (14, 768, 12, 12, 4.0, 4, True, 518,
                               'antialias')
    assert b8.file_names() == ['dino_vitb8.safetensors', 'dino_vitb8.bin',
                               'dino_vitb8-hf']
    for entry in VFM_FILES.values():
        assert [s.layout for s in entry.sources] == ['timm', 'transformers']
        assert entry.arch.width // entry.arch.heads == 64
        assert 80 < entry.sources[0].size_mb < 400
    for alias in ('dino-vitb8', 'DINO_VITB8.safetensors', 'dino_vitb8-hf',
                  'pretrained/dino_vitb8.pth'):
        assert vfm_files.get(alias) is b8


def test_find_in_pretrained(tmp_path):
    (tmp_path / 'dino_vitb8.bin').write_bytes(b'x')
    (tmp_path / 'dino_vitb16-hf').mkdir()
    (tmp_path / 'dino_vitb16-hf' / 'config.json').write_text('{}')
    assert find_vfm_file('dino_vitb8', str(tmp_path)) == str(
        tmp_path / 'dino_vitb8.bin')
    assert find_vfm_file('dino_vitb16', str(tmp_path)) == str(
        tmp_path / 'dino_vitb16-hf')
    # a config's path with another extension finds the file beside it
    assert find_vfm_file(str(tmp_path / 'dino_vitb8.safetensors')) == str(
        tmp_path / 'dino_vitb8.bin')
    path = str(tmp_path / 'dino_vitb8.bin')
    assert find_vfm_file(path) == path
    with pytest.raises(TypeError, match='a path or a name'):
        find_vfm_file(None)


def _serve(hub, repo: str, files: dict) -> None:  # noqa: F811
    for name, data in files.items():
        hub.files[repo, name] = (data, sha(data))


def test_download_timm_file_then_load_it(hub, tmp_path, capsys):  # noqa: F811
    data = save(_dino_state())
    _serve(hub, 'timm/vit_base_patch8_224.dino', {'model.safetensors': data})
    target = tmp_path / 'pretrained'
    assert tool.main(['dino_vitb8', '--dir', str(target)]) == 0
    err = capsys.readouterr().err
    assert f"SHA-256 ok, the hub's ({sha(data)})" in err
    assert os.listdir(target) == ['dino_vitb8.safetensors']
    path = find_vfm_file('dino_vitb8', str(target))
    assert path == str(target / 'dino_vitb8.safetensors')
    model = VisionFoundationModel(pretrained=path)
    assert model(torch.zeros(1, 3, 16, 24)).shape == (1, 16, 2, 3)
    hub.requests.clear()
    assert tool.main(['dino-vitb8', '--dir', str(target)]) == 0
    assert hub.requests == [] and 'already present' in capsys.readouterr().err


def test_download_falls_back_to_transformers(hub, tmp_path, capsys):  # noqa: F811
    _serve(hub, 'facebook/dino-vitb16', {'model.safetensors': b'weights',
                                         'config.json': b'{"model_type": "vit"}'})
    target = tmp_path / 'pretrained'
    assert tool.main(['dino_vitb16', '--dir', str(target)]) == 0
    err = capsys.readouterr().err
    assert 'no repository timm/vit_base_patch16_224.dino' in err
    folder = target / 'dino_vitb16-hf'
    assert sorted(os.listdir(folder)) == ['config.json', 'model.safetensors']
    assert find_vfm_file('dino_vitb16', str(target)) == str(folder)


def test_download_wrong_hash_and_nothing_served(hub, tmp_path, capsys):  # noqa: F811
    hub.files['timm/vit_base_patch8_224.dino', 'model.safetensors'] = (
        b'data', '0' * 64)
    target = tmp_path / 'pretrained'
    assert tool.main(['dino_vitb8', '--dir', str(target)]) == 1
    err = capsys.readouterr().err
    assert 'SHA-256 mismatch' in err and 'Traceback' not in err
    assert not target.exists() or os.listdir(target) == []
    assert tool.main(['dinov2_vits14_reg', '--dir', str(target)]) == 1
    err = capsys.readouterr().err
    assert 'Nothing was saved' in err and 'dinov2_vits14_reg.safetensors' in err


def test_list_and_bad_names(tmp_path, capsys):
    out = io.StringIO()
    with redirect_stdout(out):
        assert tool.main(['--list', '--dir', str(tmp_path)]) == 0
    text = out.getvalue()
    for name in VFM_FILES:
        assert name in text
    assert 'hf-hub:facebook/dinov2-with-registers-base' in text
    assert tool.main(['dino_vitl16']) == 2
    assert 'unknown VFM weights' in capsys.readouterr().err
    assert tool.main([]) == 2


def _imports(path: str) -> set:
    """Every module a file of denseclip/vfm imports, made absolute."""
    import ast
    found = set()
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = 'denseclip.vfm'.rsplit('.', node.level - 1)[0] \
                if node.level else ''
            found.add('.'.join(p for p in (base, node.module) if p))
    return found


def test_vfm_imports_clip_never_the_methods():
    folder = osp.join(REPO_ROOT, 'denseclip', 'vfm')
    wrong = {f'{name}: {module}' for name in os.listdir(folder)
             if name.endswith('.py')
             for module in _imports(osp.join(folder, name))
             if module.startswith('denseclip') and not module.startswith(
                 ('denseclip.vfm', 'denseclip.clip', 'denseclip.utils'))}
    assert not wrong
    assert 'denseclip.clip.weights_guard' in _imports(
        osp.join(folder, 'model.py'))


def test_files_table_needs_only_the_standard_library():
    """tools/download_vfm.py loads denseclip/vfm/files.py on its own."""
    import subprocess
    import sys
    code = ('import importlib.util, sys\n'
            "spec = importlib.util.spec_from_file_location('f', "
            f"{osp.join(REPO_ROOT, 'denseclip', 'vfm', 'files.py')!r})\n"
            'm = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(m)\n'
            "assert 'torch' not in sys.modules and len(m.VFM_FILES) == 6\n")
    done = subprocess.run([sys.executable, '-S', '-c', code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize('name', list(VFM_FILES))
def test_table_architecture_builds_with_its_parameter_count(name):
    """Each name builds at full size from the table alone (no file; on the
    meta device) with the parameter count the table states."""
    with torch.device('meta'):
        model = VisionFoundationModel(pretrained=name)
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert count == pytest.approx(VFM_FILES[name].params_m, rel=0.01)
    assert model.pos_embed.shape[1] == 1 + (
        VFM_FILES[name].arch.image_size // model.patch_size) ** 2
