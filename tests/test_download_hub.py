"""tools/download_clip.py against a hub served on 127.0.0.1 (``HF_ENDPOINT``).

A small http.server answers OpenAI-style URLs with 404 and the hub's
``/{repo}/resolve/{revision}/{file}`` as huggingface_hub 2.4's
``hf_hub_download`` reads it (HEAD: ``X-Repo-Commit``, ``ETag``,
``X-Linked-Etag`` = the LFS SHA-256, ``X-Linked-Size``; GET with Range).
"""
import hashlib
import importlib.util
import os
import os.path as osp
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO_ROOT, 'tools', 'download_clip.py')
PAYLOAD = bytes(range(256)) * 800  # ~200 kB
COMMIT = 'a' * 40


def _load_tool():
    spec = importlib.util.spec_from_file_location('download_clip_hub', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
clip_files = tool.clip_files


class NoSleep:
    """``time`` without its waits."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        pass


class Hub:
    """What the fake hub serves and what it was asked."""

    def __init__(self):
        self.files = {}  # (repo, filename) -> (bytes, stated sha256)
        self.requests = []  # (method, path, Range header)
        self.authorization = []  # the Authorization header of each request
        self.break_first_get_at = None  # close the first GET after this many bytes


def make_handler(hub: Hub):

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *args):
            pass

        def _answer(self, body: bool):
            hub.requests.append((self.command, self.path, self.headers.get('Range')))
            hub.authorization.append(self.headers.get('Authorization'))
            parts = self.path.split('?')[0].strip('/').split('/')
            if len(parts) < 5 or parts[2] != 'resolve':  # OpenAI's URLs and the rest
                self.send_response(404)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            repo, filename = '/'.join(parts[:2]), '/'.join(parts[4:])
            if (repo, filename) not in hub.files:
                known = any(r == repo for r, _ in hub.files)
                self.send_response(404)
                self.send_header('X-Error-Code', 'EntryNotFound' if known else 'RepoNotFound')
                if known:
                    self.send_header('X-Repo-Commit', COMMIT)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            data, sha = hub.files[repo, filename]
            start = 0
            ranged = self.headers.get('Range')
            if ranged and body:
                start = int(ranged.split('=')[1].split('-')[0])
            self.send_response(206 if start else 200)
            self.send_header('X-Repo-Commit', COMMIT)
            self.send_header('ETag', f'"{sha}"')
            self.send_header('X-Linked-Etag', f'"{sha}"')
            self.send_header('X-Linked-Size', str(len(data)))
            self.send_header('Accept-Ranges', 'bytes')
            if start:
                self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
            self.send_header('Content-Length', str(len(data) - start))
            self.end_headers()
            if not body:
                return
            cut = hub.break_first_get_at
            if cut is not None:
                hub.break_first_get_at = None
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data[start:])

        def do_HEAD(self):
            self._answer(body=False)

        def do_GET(self):
            self._answer(body=True)

    return Handler


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fake hub on 127.0.0.1 (HF_ENDPOINT and DENSECLIP_OPENAI_BASE_URL
    point at it, its cache in tmp_path) and RN50's sources pointed at it."""
    import huggingface_hub.constants as hf_constants
    import huggingface_hub.utils._http as hf_http
    state = Hub()
    server = ThreadingHTTPServer(('127.0.0.1', 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, args=(0.05, ), daemon=True)
    thread.start()
    base = f'http://127.0.0.1:{server.server_address[1]}'
    monkeypatch.setenv('HF_ENDPOINT', base)
    monkeypatch.setenv(clip_files.OPENAI_BASE_URL_ENV, base + '/clip/models/')
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(tmp_path / 'hf_cache'))
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    # small chunks, so a broken transfer has some to resume from
    monkeypatch.setattr(hf_constants, 'DOWNLOAD_CHUNK_SIZE', 16384)
    monkeypatch.setattr(hf_http, 'time', NoSleep())  # its backoff: 23 s unreachable
    state.base = base
    yield state
    server.shutdown()
    server.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve_open_clip(hub: Hub, name: str = 'RN50', data: bytes = PAYLOAD,
                    stated: str = None) -> str:
    """Serve ``data`` as open_clip's hub file of ``name``; its repo."""
    repo = next(s.repo for s in clip_files.get(name).sources
                if s.layout == clip_files.OPEN_CLIP)
    hub.files[repo, 'open_clip_model.safetensors'] = (data, stated or sha(data))
    return repo


def test_openai_404_then_hub(hub, tmp_path, capsys):
    repo = serve_open_clip(hub)
    target = tmp_path / 'pretrained'
    assert tool.main(['RN50', '--dir', str(target), '--no-progress']) == 0
    err = capsys.readouterr().err
    assert 'HTTP 404' in err and 'trying the next source' in err
    assert f"SHA-256 ok, the hub's ({sha(PAYLOAD)})" in err
    assert os.listdir(target) == ['RN50.safetensors']
    assert (target / 'RN50.safetensors').read_bytes() == PAYLOAD
    asked = [p for m, p, _ in hub.requests]
    assert asked[0] == '/clip/models/' + clip_files.get('RN50').url.split('/models/')[1]
    assert f'/{repo}/resolve/main/open_clip_model.safetensors' in asked
    # the table knows where the file came from
    entry, source = clip_files.source_for_file(str(target / 'RN50.safetensors'))
    assert (entry.name, source.layout, source.activation) == ('RN50', 'open_clip', 'quick_gelu')
    # present now: nothing is asked again
    hub.requests.clear()
    assert tool.main(['rn50', '--dir', str(target)]) == 0
    assert hub.requests == [] and 'already present' in capsys.readouterr().err


def test_wrong_hash_refused_nothing_left(hub, tmp_path, capsys):
    serve_open_clip(hub, stated='0' * 64)
    target = tmp_path / 'pretrained'
    assert tool.main(['RN50', '--dir', str(target), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'SHA-256 mismatch' in err and '0' * 64 in err and sha(PAYLOAD) in err
    assert 'Traceback' not in err
    assert not target.exists() or os.listdir(target) == []
    # the cached copy is gone too: the next run downloads again
    kept = [osp.join(d, f) for d, _, fs in os.walk(tmp_path / 'hf_cache') for f in fs
            if osp.sep + 'blobs' in d or osp.sep + 'snapshots' in d]
    assert kept == []


def test_interrupted_transfer_resumed(hub, tmp_path, capsys):
    repo = serve_open_clip(hub)
    hub.break_first_get_at = 50_000
    target = tmp_path / 'pretrained'
    assert tool.main(['RN50', '--dir', str(target), '--no-progress']) == 0
    assert (target / 'RN50.safetensors').read_bytes() == PAYLOAD
    gets = [(p, r) for m, p, r in hub.requests if m == 'GET' and repo in p]
    assert len(gets) == 2 and gets[0][1] is None
    start = int(gets[1][1].split('=')[1].rstrip('-'))  # only the rest asked again
    assert 0 < start <= 50_000 and start % 16384 == 0


def test_transformers_folder_when_open_clip_missing(hub, tmp_path):
    entry = clip_files.get('ViT-B/16')
    hf = next(s for s in entry.sources if s.layout == clip_files.TRANSFORMERS)
    config = b'{"model_type": "clip"}'
    hub.files[hf.repo, 'model.safetensors'] = (PAYLOAD, sha(PAYLOAD))
    hub.files[hf.repo, 'config.json'] = (config, sha(config))
    target = tmp_path / 'pretrained'
    assert tool.main(['ViT-B-16', '--dir', str(target), '--no-progress']) == 0
    folder = target / 'ViT-B-16-hf'
    assert sorted(os.listdir(target)) == ['ViT-B-16-hf']
    assert sorted(os.listdir(folder)) == ['config.json', 'model.safetensors']
    assert (folder / 'config.json').read_bytes() == config
    assert clip_files.find_clip_file('ViT-B/16', str(target)) == str(folder)
    _, source = clip_files.source_for_file(str(folder / 'model.safetensors'))
    assert source.layout == 'transformers'


def test_unknown_hub_repo_and_no_network(hub, tmp_path, capsys, monkeypatch):
    target = tmp_path / 'pretrained'
    # nothing served: OpenAI 404, every hub repo 'RepoNotFound'
    assert tool.main(['ViT-H-14/dfn5b', '--dir', str(target), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'no repository apple/DFN5B-CLIP-ViT-H-14' in err and 'HF_TOKEN' in err
    assert 'another machine' in err and 'ViT-H-14-dfn5b.safetensors' in err
    with pytest.raises(FileNotFoundError, match='no repository org/none'):
        clip_files.find_clip_file('hf-hub:org/none')
    # no network: nothing listens on the port
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')
    monkeypatch.setenv(clip_files.OPENAI_BASE_URL_ENV, 'http://127.0.0.1:9/')
    assert tool.main(['RN50', '--dir', str(target), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'cannot reach http://127.0.0.1:9' in err and 'another machine' in err
    assert 'Traceback' not in err
    assert not target.exists() or os.listdir(target) == []


def test_find_clip_file_hf_hub(hub):
    repo = serve_open_clip(hub, 'ViT-B-16/metaclip_fullcc')
    path = clip_files.find_clip_file(f'hf-hub:{repo}')
    assert open(path, 'rb').read() == PAYLOAD
    assert 'hf_cache' in path
    entry, source = clip_files.source_for_file(path)
    assert entry.name == 'ViT-B-16/metaclip_fullcc' and source.activation == 'quick_gelu'
    with pytest.raises(ValueError, match='hf-hub:ORG/REPO'):
        clip_files.find_clip_file('hf-hub:justaname')


def test_hf_token_is_sent(hub, tmp_path, monkeypatch):
    serve_open_clip(hub)
    monkeypatch.setenv('HF_TOKEN', 'hf_secret_for_test')
    assert tool.main(['RN50', '--dir', str(tmp_path), '--no-progress']) == 0
    hub_asked = [a for (m, p, _), a in zip(hub.requests, hub.authorization)
                 if '/resolve/' in p]
    assert hub_asked and set(hub_asked) == {'Bearer hf_secret_for_test'}


def test_hf_hub_transformers_repo(hub):
    config = b'{"model_type": "clip"}'
    hub.files['someone/clip-tf', 'model.safetensors'] = (PAYLOAD, sha(PAYLOAD))
    with pytest.raises(FileNotFoundError, match='someone/clip-tf has none of config.json'):
        clip_files.find_clip_file('hf-hub:someone/clip-tf')
    hub.files['someone/clip-tf', 'config.json'] = (config, sha(config))
    folder = clip_files.find_clip_file('hf-hub:someone/clip-tf')
    assert sorted(os.listdir(folder)) == ['config.json', 'model.safetensors']
    hub.files['someone/not-clip', 'README.md'] = (b'x', sha(b'x'))
    with pytest.raises(FileNotFoundError, match='holds no CLIP weights'):
        clip_files.find_clip_file('hf-hub:someone/not-clip')


def test_corrupt_openai_file_replaced_by_the_hub_file(hub, tmp_path, capsys):
    serve_open_clip(hub)
    target = tmp_path / 'pretrained'
    target.mkdir()
    (target / 'RN50.pt').write_bytes(b'corrupt')
    assert tool.main(['RN50', '--dir', str(target), '--no-progress']) == 0
    assert 'RN50.pt: removed' in capsys.readouterr().err
    assert os.listdir(target) == ['RN50.safetensors']
    assert clip_files.find_clip_file('RN50', str(target)) == str(target / 'RN50.safetensors')
