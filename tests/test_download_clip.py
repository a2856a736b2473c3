"""tools/download_clip.py and denseclip/clip/files.py, without any network.

Downloads are served from local files (``file://`` URLs) or from a fake
``urllib.request.urlopen``; the table entry under test is swapped for one whose
hash is that of a small local payload.
"""
import hashlib
import importlib.util
import io
import os
import os.path as osp
import re
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO_ROOT, 'tools', 'download_clip.py')

REQUIRED = ['RN50', 'RN101', 'RN50x4', 'RN50x16', 'RN50x64', 'ViT-B/32', 'ViT-B/16', 'ViT-L/14']
PAYLOAD = b'not really CLIP weights\n' * 5000  # ~120 kB: several chunks


def _load_tool():
    spec = importlib.util.spec_from_file_location('download_clip', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
clip_files = tool.clip_files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder) -> list:
    """Files in ``folder`` that are temporary downloads."""
    return [n for n in os.listdir(folder) if n.endswith('.part')]


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Serve PAYLOAD as RN50 from a file:// URL; returns (target dir, ClipFile)."""
    src = tmp_path / 'server' / 'RN50.pt'
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    fake = openai_only('RN50', src.as_uri(), sha(PAYLOAD))
    monkeypatch.setitem(clip_files.CLIP_FILES, 'RN50', fake)
    target = tmp_path / 'pretrained'
    return target, fake


def openai_only(name: str, url: str, sha256: str):
    """The table entry of ``name`` with only an OpenAI source, at ``url``."""
    entry = clip_files.get(name)
    return entry._replace(sources=(entry.openai._replace(url=url, sha256=sha256), ))


class FakeResponse:
    """What urlopen returns: yields ``chunks``, then raises ``error`` if given."""

    def __init__(self, chunks, error=None, length=None):
        self.chunks = list(chunks)
        self.error = error
        total = sum(len(c) for c in self.chunks) if length is None else length
        self.headers = {'Content-Length': str(total)}

    def read(self, n=-1):
        if self.chunks:
            return self.chunks.pop(0)
        if self.error is not None:
            raise self.error
        return b''

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def fake_urlopen(response):
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        return response

    urlopen.calls = calls
    return urlopen


def refuse_urlopen(url, timeout=None):
    raise AssertionError(f'the URL must not be opened: {url}')


def no_network(url, timeout=None):
    raise urllib.error.URLError(socket.gaierror(-3, 'Temporary failure in name resolution'))


# --------------------------------------------------------------------- the table

def test_table_has_every_required_model():
    names = clip_files.model_names()
    for name in REQUIRED:
        assert name in names
    assert 'ViT-L/14@336px' in names
    assert names[:len(REQUIRED)] == REQUIRED  # OpenAI's order


def test_urls_carry_their_sha256_and_file_names():
    for name in clip_files.openai_names():
        info = clip_files.CLIP_FILES[name]
        assert info.name == name
        assert re.fullmatch(r'[0-9a-f]{64}', info.sha256), name
        assert info.url.startswith('https://openaipublic.azureedge.net/clip/models/')
        # OpenAI's invariant: the folder holding the file is named by its SHA-256
        assert info.url.split('/')[-2] == info.sha256, name
        assert info.filename == name.replace('/', '-').replace('@', '-') + '.pt'
        assert info.url.endswith('/' + info.filename)
    assert clip_files.get('RN50').sha256.startswith('afeb0e10f9e5a86d')
    hashes = {clip_files.CLIP_FILES[n].sha256 for n in clip_files.openai_names()}
    assert len(hashes) == len(clip_files.openai_names()) == 9


def test_tool_reads_the_one_table():
    assert osp.samefile(clip_files.__file__, osp.join(REPO_ROOT, 'denseclip', 'clip', 'files.py'))


# the config folders (under configs/) of each family that ``used_by`` names;
# toy configs read toy CLIP files
CONFIG_FAMILIES = {
    '': 'DenseCLIP', 'maskclip': 'MaskCLIP', 'ovss/maskclip': 'MaskCLIP',
    'maskclip_plus': 'MaskCLIP+', 'ovss/sclip': 'SCLIP',
    'ovss/clearclip': 'ClearCLIP', 'ovss/naclip': 'NACLIP',
    'ovss/scclip': 'SC-CLIP', 'ovss/proxyclip': 'ProxyCLIP'}
SKIPPED_CONFIG_FOLDERS = ('toy', )


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _clip_files_read(config: str) -> set:
    """OpenAI's names of the CLIP files ``config`` names anywhere, and the
    configs it names (MaskCLIP+'s teacher) name."""
    from mmengine.config import Config
    by_file = {f.filename: n for n, f in clip_files.CLIP_FILES.items()}
    found = set()
    for value in _strings(Config.fromfile(config)._cfg_dict.to_dict()):
        if osp.basename(value) in by_file:
            found.add(by_file[osp.basename(value)])
        elif value.endswith('.py') and osp.isfile(value):
            found |= _clip_files_read(value)
    return found


def _family(config: str) -> str:
    folder = osp.dirname(osp.relpath(config, osp.join(REPO_ROOT, 'configs')))
    prefixes = [p for p in CONFIG_FAMILIES
                if folder == p or folder.startswith(p + '/')]
    assert prefixes, (f'{config}: add its folder to CONFIG_FAMILIES (which '
                      'family of used_by it belongs to)')
    return CONFIG_FAMILIES[max(prefixes, key=len)]


@pytest.mark.slow
def test_used_by_names_the_families_whose_configs_read_each_file(capsys):
    """--list's "used by" column is what the configs read: every config is
    loaded (with its MaskCLIP+ teacher) and the CLIP files it names are
    collected per family; the training-free methods' configs count too."""
    import glob
    read = {}
    for config in sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '**',
                                            '*.py'), recursive=True)):
        parts = osp.relpath(config, osp.join(REPO_ROOT, 'configs')).split(
            os.sep)
        if '_base_' in parts or parts[0] in SKIPPED_CONFIG_FOLDERS:
            continue
        for name in _clip_files_read(config):
            read.setdefault(name, set()).add(_family(config))
    listed = {n: set(f.used_by) for n, f in clip_files.CLIP_FILES.items()
              if f.used_by}
    assert listed == read
    assert {'SCLIP', 'ClearCLIP', 'NACLIP'} <= read['ViT-B/16']
    assert tool.main(['--list']) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith('ViT-B/16 '))
    assert 'MaskCLIP+, SCLIP, ClearCLIP, NACLIP' in row


@pytest.mark.parametrize('given, expected', [
    ('RN50', 'RN50'), ('rn50', 'RN50'), ('RN50.pt', 'RN50'), ('rn50x16', 'RN50x16'),
    ('ViT-B/16', 'ViT-B/16'), ('ViT-B-16', 'ViT-B/16'), ('vit-b-16.pt', 'ViT-B/16'),
    ('pretrained/ViT-B-16.pt', 'ViT-B/16'), (' ViT-L/14 ', 'ViT-L/14'),
    ('ViT-L/14@336px', 'ViT-L/14@336px'), ('ViT-L-14-336px.pt', 'ViT-L/14@336px'),
])
def test_resolve_name(given, expected):
    assert clip_files.resolve_name(given) == expected


@pytest.mark.parametrize('bad', ['RN18', 'ViT-B', 'ViT-B/8', '', 'RN50x'])
def test_resolve_name_unknown_lists_valid_names(bad):
    with pytest.raises(clip_files.UnknownModelError) as info:
        clip_files.resolve_name(bad)
    for name in REQUIRED:
        assert name in str(info.value)


def test_sha256_of_and_verify(tmp_path, monkeypatch):
    path = tmp_path / 'RN50.pt'
    path.write_bytes(PAYLOAD)
    assert clip_files.sha256_of(str(path)) == sha(PAYLOAD)
    assert clip_files.sha256_of(str(path), chunk_size=7) == sha(PAYLOAD)
    assert not clip_files.verify(str(path), 'RN50')  # not the real RN50
    fake = openai_only('RN50', clip_files.get('RN50').url, sha(PAYLOAD))
    monkeypatch.setitem(clip_files.CLIP_FILES, 'RN50', fake)
    assert clip_files.verify(str(path), 'rn50.pt')
    assert not clip_files.verify(str(tmp_path / 'missing.pt'), 'RN50')
    assert not clip_files.verify(str(tmp_path), 'RN50')  # a folder


# --------------------------------------------------------------------- fetch()

def test_fetch_good_hash_writes_final_file(served):
    target, info = served
    dest = target / info.filename
    assert tool.fetch(info.url, str(dest), info.sha256, progress=False) == str(dest)
    assert dest.read_bytes() == PAYLOAD
    assert os.listdir(target) == [info.filename]
    assert oct(dest.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_fetch_bad_hash_leaves_nothing(served):
    target, info = served
    dest = target / info.filename
    with pytest.raises(tool.ChecksumError) as err:
        tool.fetch(info.url, str(dest), '0' * 64, progress=False)
    assert 'SHA-256 mismatch' in str(err.value) and info.sha256 in str(err.value)
    assert not dest.exists()
    assert os.listdir(target) == []


def test_fetch_bad_hash_keeps_previous_file(served):
    target, info = served
    target.mkdir()
    dest = target / info.filename
    dest.write_bytes(b'old')
    with pytest.raises(tool.ChecksumError):
        tool.fetch(info.url, str(dest), '0' * 64, progress=False)
    assert dest.read_bytes() == b'old'
    assert os.listdir(target) == [info.filename]


@pytest.mark.parametrize('error, raised', [
    (ConnectionResetError(104, 'Connection reset by peer'), tool.NetworkError),
    (socket.timeout('timed out'), tool.NetworkError),
    (KeyboardInterrupt(), KeyboardInterrupt),
])
def test_fetch_interrupted_midstream_leaves_nothing(tmp_path, monkeypatch, error, raised):
    response = FakeResponse([PAYLOAD[:1000], PAYLOAD[1000:2000]], error=error,
                            length=len(PAYLOAD))
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(response))
    dest = tmp_path / 'RN50.pt'
    with pytest.raises(raised):
        tool.fetch('https://example.invalid/RN50.pt', str(dest), sha(PAYLOAD), progress=False)
    assert os.listdir(tmp_path) == []


def test_fetch_truncated_download_is_rejected(tmp_path, monkeypatch):
    # the server closes early: fewer bytes than Content-Length, no exception
    response = FakeResponse([PAYLOAD[:1000]], length=len(PAYLOAD))
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(response))
    with pytest.raises(tool.NetworkError, match='incomplete'):
        tool.fetch('https://example.invalid/RN50.pt', str(tmp_path / 'RN50.pt'),
                   sha(PAYLOAD), progress=False)
    assert os.listdir(tmp_path) == []


def test_fetch_with_fake_opener_and_no_content_length(tmp_path, monkeypatch):
    response = FakeResponse([PAYLOAD[:5], PAYLOAD[5:]])
    response.headers = {}
    opener = fake_urlopen(response)
    monkeypatch.setattr(urllib.request, 'urlopen', opener)
    dest = tmp_path / 'sub' / 'RN50.pt'
    tool.fetch('https://example.invalid/RN50.pt', str(dest), sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert opener.calls == ['https://example.invalid/RN50.pt']


def test_fetch_unreachable_url(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    with pytest.raises(tool.NetworkError, match='name resolution'):
        tool.fetch('https://example.invalid/RN50.pt', str(tmp_path / 'RN50.pt'), '0' * 64)
    assert os.listdir(tmp_path) == []


def test_fetch_over_local_http(tmp_path):
    # a real HTTP response (Content-Length, chunked reads) from a server on localhost
    root = tmp_path / 'server'
    root.mkdir()
    (root / 'RN50.pt').write_bytes(PAYLOAD)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05, ), daemon=True)
    thread.start()
    try:
        base = f'http://127.0.0.1:{server.server_address[1]}'
        dest = tmp_path / 'pretrained' / 'RN50.pt'
        tool.fetch(f'{base}/RN50.pt', str(dest), sha(PAYLOAD), progress=False,
                   chunk_size=4096)
        assert dest.read_bytes() == PAYLOAD
        with pytest.raises(tool.NetworkError, match='HTTP 404'):
            tool.fetch(f'{base}/missing.pt', str(tmp_path / 'pretrained' / 'x.pt'),
                       sha(PAYLOAD), progress=False)
        assert sorted(os.listdir(dest.parent)) == ['RN50.pt']
    finally:
        server.shutdown()
        server.server_close()


def test_progress_bar():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    plain = io.StringIO()
    bar = tool.Progress('RN50.pt', 4 << 20, stream=plain)
    for _ in range(4):
        bar.update(1 << 20)
    bar.close()
    assert plain.getvalue().count('\n') == 1 and '100.0%' in plain.getvalue()

    tty = Tty()
    bar = tool.Progress('RN50.pt', None, stream=tty, interval=0)
    bar.update(1 << 20)
    bar.close()
    assert tty.getvalue().startswith('\rRN50.pt 1.0 MiB') and tty.getvalue().endswith('\n')


# --------------------------------------------------------------------- ensure() / main()

def test_existing_correct_file_is_skipped_without_opening_url(served, monkeypatch, capsys):
    target, info = served
    target.mkdir()
    (target / info.filename).write_bytes(PAYLOAD)
    monkeypatch.setattr(urllib.request, 'urlopen', refuse_urlopen)
    assert tool.ensure('RN50', str(target), progress=False) == 'present'
    assert 'already present' in capsys.readouterr().err
    assert tool.main(['rn50', '--dir', str(target)]) == 0
    assert 'already present' in capsys.readouterr().err


def test_existing_wrong_file_is_replaced(served, capsys):
    target, info = served
    target.mkdir()
    (target / info.filename).write_bytes(b'corrupt')
    assert tool.main(['RN50.pt', '--dir', str(target), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert f'its SHA-256 is {sha(b"corrupt")}' in err and 'downloading it again' in err
    assert (target / info.filename).read_bytes() == PAYLOAD
    assert os.listdir(target) == [info.filename]


def test_force_downloads_again(served, monkeypatch):
    target, info = served
    target.mkdir()
    (target / info.filename).write_bytes(PAYLOAD)
    opener = fake_urlopen(FakeResponse([PAYLOAD]))
    monkeypatch.setattr(urllib.request, 'urlopen', opener)
    assert tool.main(['RN50', '--dir', str(target), '--force', '--no-progress']) == 0
    assert opener.calls == [info.url]
    assert (target / info.filename).read_bytes() == PAYLOAD


def test_main_downloads_with_progress(served, capsys):
    target, info = served
    assert tool.main(['rn50', '--dir', str(target)]) == 0
    err = capsys.readouterr().err
    assert '100.0%' in err and 'RN50.pt [' in err  # progress line (stderr is not a tty)
    assert (target / info.filename).read_bytes() == PAYLOAD


def test_main_ok_and_bad_hash_exit_codes(served, monkeypatch, capsys):
    target, info = served
    assert tool.main(['rn50', 'RN50', '--dir', str(target), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert err.count('downloading') == 1 and 'saved, SHA-256 ok' in err
    assert (target / info.filename).read_bytes() == PAYLOAD

    monkeypatch.setitem(clip_files.CLIP_FILES, 'RN50', openai_only('RN50', info.url, 'f' * 64))
    (target / info.filename).unlink()
    assert tool.main(['RN50', '--dir', str(target), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'SHA-256 mismatch' in err and 'Traceback' not in err
    assert os.listdir(target) == []


def test_main_without_network(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    # the hub sources: none (test_download_hub.py tries them unreachable)
    info = clip_files.get('ViT-B/16')
    monkeypatch.setitem(clip_files.CLIP_FILES, 'ViT-B/16',
                        openai_only('ViT-B/16', info.url, info.sha256))
    assert tool.main(['ViT-B-16', '--dir', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    url = clip_files.get('ViT-B/16').url
    message = next(line for line in err.splitlines() if line.startswith('error:'))
    assert url in message and 'another machine' in message
    assert str(tmp_path / 'ViT-B-16.pt') in message
    assert 'Traceback' not in err
    assert os.listdir(tmp_path) == []


def test_main_interrupted(tmp_path, monkeypatch, capsys):
    response = FakeResponse([PAYLOAD[:1000]], error=KeyboardInterrupt(), length=len(PAYLOAD))
    monkeypatch.setattr(urllib.request, 'urlopen', fake_urlopen(response))
    assert tool.main(['RN50', '--dir', str(tmp_path), '--no-progress']) == 130
    assert 'interrupted' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_main_target_is_a_folder(served, capsys):
    target, info = served
    (target / info.filename).mkdir(parents=True)
    assert tool.main(['RN50', '--dir', str(target)]) == 1
    assert 'not a regular file' in capsys.readouterr().err


def test_main_unknown_name_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(urllib.request, 'urlopen', refuse_urlopen)
    assert tool.main(['RN50', 'RN18', '--dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'RN18'" in err
    for name in REQUIRED:
        assert name in err
    assert os.listdir(tmp_path) == []  # nothing is fetched before the names are checked


def test_main_without_names_exits_2(capsys):
    assert tool.main([]) == 2
    assert 'RN50' in capsys.readouterr().err


def test_main_list(tmp_path, capsys):
    (tmp_path / 'RN101.pt').write_bytes(b'x')
    assert tool.main(['--list', '--dir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for info in clip_files.CLIP_FILES.values():
        assert info.name in out and info.filename in out
        for source in info.sources:
            assert source.describe() in out
            assert f'{source.layout}, {source.activation}, ~' in out
            assert source.sha256 is None or source.sha256 in out
    assert 'timm/vit_base_patch16_clip_224.metaclip_2pt5b' in out
    assert re.search(r'^ViT-H-14/laion2b_s32b_b79k +gelu ', out, re.M)
    assert re.search(r'^ViT-B-16/metaclip_fullcc +quick_gelu ', out, re.M)
    assert re.search(r'^RN101 .* yes$', out, re.M)
    assert re.search(r'^RN50 .* -$', out, re.M)


@pytest.mark.integration
def test_script_runs_from_repo_root():
    # as users run it: `python tools/download_clip.py ...` from the repository root
    proc = subprocess.run([sys.executable, 'tools/download_clip.py', 'nope'],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'valid names' in proc.stderr and 'ViT-B/16' in proc.stderr
    assert 'Traceback' not in proc.stderr
