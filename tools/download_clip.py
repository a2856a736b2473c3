#!/usr/bin/env python
"""Fetch named CLIP weights into ``pretrained/``: OpenAI's URL, then the hub.

    python tools/download_clip.py ViT-B-16 RN50          # OpenAI's names ('/' or '-')
    python tools/download_clip.py ViT-B-16/metaclip_fullcc ViT-H-14/laion2b_s32b_b79k
    python tools/download_clip.py --list                # names, sources, layout, activation, size
    python tools/download_clip.py RN101 --dir /data/clip --force

Each name's sources (``denseclip/clip/files.py``) are tried in order until
one answers: OpenAI's URL (it answers 404 since 2025, openai/CLIP issue
#516; ``DENSECLIP_OPENAI_BASE_URL`` replaces its host, for a mirror), then
the Hugging Face Hub through ``huggingface_hub`` (its cache, its resumption
of broken transfers, ``HF_TOKEN``, ``HF_ENDPOINT``). A file lands in
``pretrained/`` as ``<name>.<ext>``, ``/`` and ``@`` written ``-``
(``ViT-B-16.pt`` from OpenAI, ``ViT-B-16.safetensors`` from open_clip's
hub copy, a folder ``ViT-B-16-hf/`` from transformers'). It is written
under a temporary name and renamed onto its final one only after its SHA-256
was checked (OpenAI's, from the table; the hub's, stated by the hub): an
interrupted, truncated or corrupt download never leaves a file under the
final name. A wrong hash is an error (no further source is tried). An
OpenAI file already there with the right hash is kept; one with another
hash is downloaded again (the old file stays until the new one is checked).

Exit codes: 0 all files present and verified, 1 a download failed (no network,
HTTP error, wrong hash), 2 bad arguments (e.g. an unknown model name).

``pretrained/README.md`` lists the table and explains how to check a file by hand.
"""
import argparse
import hashlib
import http.client
import importlib.util
import os
import os.path as osp
import sys
import time
import urllib.error
import urllib.request
from typing import Optional, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_DIR = osp.join(REPO_ROOT, 'pretrained')
CHUNK_SIZE = 1 << 20
TIMEOUT_S = 60


def _import_stdlib_module(name: str):
    """``denseclip/<name>.py`` (a standard-library-only module), without
    importing the whole package.

    ``import denseclip`` imports torch and mmseg (seconds, and impossible
    before mmcv is built): so when the package is not imported yet, the file
    in this checkout is loaded on its own. Outside a checkout the installed
    package is used.
    """
    dotted = 'denseclip.' + name.replace('/', '.')
    path = osp.join(REPO_ROOT, 'denseclip', f'{name}.py')
    if 'denseclip' not in sys.modules and osp.isfile(path):
        spec = importlib.util.spec_from_file_location(
            '_denseclip_' + name.replace('/', '_'), path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(dotted)


clip_files = _import_stdlib_module('clip/files')
hub = _import_stdlib_module('clip/hub')
atomic_files = _import_stdlib_module('utils/atomic_files')


class DownloadError(RuntimeError):
    """A download that failed; the message is one line meant for the user."""


class NetworkError(DownloadError):
    """The URL could not be reached or the connection broke."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected SHA-256."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _show(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    rel = osp.relpath(osp.abspath(path))
    return path if rel.startswith('..') else rel


def _mib(n: int) -> str:
    return f'{n / (1 << 20):.1f} MiB'


class Progress:
    """A plain progress line on stderr (redrawn in place on a terminal)."""

    def __init__(self, label: str, total, stream=None, interval: float = 0.2):
        self.label = label
        self.total = total if total and total > 0 else None
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, 'isatty') and self.stream.isatty()
        self.interval = interval
        self.start = time.monotonic()
        self.last = 0.0
        self.done = 0

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        speed = f'{_mib(int(self.done / elapsed))}/s'
        if self.total:
            pct = 100.0 * self.done / self.total
            width = 30
            filled = min(width, int(width * self.done / self.total))
            bar = '#' * filled + '-' * (width - filled)
            return (f'{self.label} [{bar}] {pct:5.1f}% '
                    f'{_mib(self.done)} / {_mib(self.total)} {speed}')
        return f'{self.label} {_mib(self.done)} {speed}'

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty and now - self.last >= self.interval:
            self.last = now
            self.stream.write('\r' + self._line())
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write('\r' + self._line() + '\n')
        else:  # logs and pipes get one line, not hundreds of redraws
            self.stream.write(self._line() + '\n')
        self.stream.flush()


def _content_length(response):
    try:
        value = response.headers.get('Content-Length')
    except AttributeError:
        return None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f'HTTP {exc.code} {exc.reason}'
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def fetch(url: str, dest: str, sha256: str, *, progress: bool = True,
          chunk_size: int = CHUNK_SIZE, timeout: float = TIMEOUT_S) -> str:
    """Download ``url`` to ``dest`` if and only if its SHA-256 is ``sha256``.

    The bytes go to a temporary file in ``dest``'s folder, hashed as they
    arrive; the file is renamed onto ``dest`` (atomically, replacing what was
    there) only when the hash matches. On any failure, including
    ``KeyboardInterrupt``, the temporary file is removed and ``dest`` is left
    as it was. Raises :class:`NetworkError` or :class:`ChecksumError`.
    """
    with atomic_files.atomic_path(dest, fsync=True) as tmp:
        digest = hashlib.sha256()
        received = 0
        with open(tmp, 'wb') as out:
            try:
                # looked up at call time, so tests can monkeypatch it
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                raise NetworkError(f'cannot download {url}: {_describe(exc)}') from exc
            with response:
                total = _content_length(response)
                bar = Progress(osp.basename(dest), total) if progress else None
                while True:
                    try:
                        chunk = response.read(chunk_size)
                    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                        raise NetworkError(
                            f'download of {url} broke off after {_mib(received)}: '
                            f'{_describe(exc)}') from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
        if total is not None and received != total:
            raise NetworkError(f'download of {url} is incomplete: got {received} of '
                               f'{total} bytes; nothing was saved')
        got = digest.hexdigest()
        if got != sha256:
            raise ChecksumError(f'SHA-256 mismatch for {url}: expected {sha256}, got {got} '
                                f'({received} bytes); nothing was saved')
    return dest


def _present(entry, directory: str, force: bool) -> Tuple[Optional[str], Optional[str]]:
    """``(kept, stale)``: the file of ``entry`` already in ``directory``
    that can be kept, if any (OpenAI's file when its SHA-256 is OpenAI's, a
    hub file or transformers folder as it is: it was checked when it was
    saved), and OpenAI's file there with another hash, if any (replaced by
    whatever source answers)."""
    openai = entry.openai
    stale = None
    for file_name in entry.file_names():
        path = osp.join(directory, file_name)
        if not osp.lexists(path):
            continue
        if openai is not None and file_name == clip_files.dest_name(entry, openai):
            if not osp.isfile(path):
                raise DownloadError(f'{_show(path)} exists and is not a regular file; '
                                    'move it away first')
            got = clip_files.sha256_of(path)
            if got == openai.sha256 and not force:
                _log(f'{_show(path)}: already present, SHA-256 ok ({openai.sha256[:12]}...), '
                     'skipping')
                return path, None
            if got == openai.sha256:
                _log(f'{_show(path)}: present and correct, downloading again (--force)')
            else:
                _log(f'{_show(path)}: exists but its SHA-256 is {got}, expected '
                     f'{openai.sha256}; downloading it again')
                stale = path
        elif not force:
            _log(f'{_show(path)}: already present (saved from the hub, where its SHA-256 was '
                 'checked), skipping; --force downloads it again')
            return path, stale
    return None, stale


def _from_hub(entry, source, directory: str) -> str:
    """Fetch ``source`` (a hub repository) into the hub cache and copy it to
    ``directory`` under its table name, checked against the hub's SHA-256."""
    if source.layout == clip_files.TRANSFORMERS:
        weights = hub.fetch_hub_file(source.repo, source.filenames)
        files = [weights, hub.fetch_hub_file(source.repo, [clip_files.TRANSFORMERS_CONFIG])]
        dest = osp.join(directory, clip_files.dest_name(entry, source))
        hub.install_folder(files, dest)
    else:
        files = [hub.fetch_hub_file(source.repo, source.filenames)]
        dest = osp.join(directory, clip_files.dest_name(entry, source, files[0].filename))
        hub.install_file(files[0], dest)
    for cached in files:
        check = (f'SHA-256 ok, the hub\'s ({cached.sha256})' if cached.sha256 else
                 'the hub states no SHA-256 for it: not checked')
        _log(f'{source.repo}/{cached.filename}: {check}')
    return dest


def ensure(name: str, directory: str = DEFAULT_DIR, *, force: bool = False,
           progress: bool = True) -> str:
    """Make the file of ``name`` present in ``directory``, from its first
    source that answers (OpenAI's URL, then the hub).

    Returns ``'present'`` (already there, OpenAI's with the right hash:
    nothing is opened) or ``'downloaded'``. Raises
    ``clip_files.UnknownModelError``, :class:`ChecksumError` /
    ``hub.HubChecksumError`` (a wrong hash: no other source is tried), or
    :class:`DownloadError` naming every source that failed.
    """
    entry = clip_files.get(name)
    kept, stale = _present(entry, directory, force)
    if kept is not None:
        return 'present'
    failures = []
    for source in entry.sources:
        try:
            if source.kind == clip_files.OPENAI_URL:
                url = source.effective_url()
                dest = osp.join(directory, clip_files.dest_name(entry, source))
                _log(f'{entry.name}: downloading {url}')
                fetch(url, dest, source.sha256, progress=progress)
                _log(f'{_show(dest)}: saved, SHA-256 ok ({source.sha256})')
            else:
                _log(f'{entry.name}: fetching {source.describe()} ({source.layout} layout) '
                     f'from {hub.endpoint()}')
                dest = _from_hub(entry, source, directory)
                _log(f'{_show(dest)}: saved')
            if stale is not None and osp.abspath(stale) != osp.abspath(dest):
                # it would be found before the new file (find_clip_file's order)
                os.remove(stale)
                _log(f'{_show(stale)}: removed (its SHA-256 was not OpenAI\'s)')
            return 'downloaded'
        except (ChecksumError, hub.HubChecksumError):
            raise
        except NetworkError as exc:
            failures.append(str(exc))
        except hub.HubNetworkError as exc:
            failures.append(str(exc))
            break  # the other hub sources are on the same unreachable hub
        except hub.HubError as exc:
            failures.append(str(exc))
        if source is not entry.sources[-1]:
            _log(f'{entry.name}: {failures[-1]}; trying the next source')
    where = osp.join(directory, entry.filename)
    raise NetworkError('; '.join(failures) + f'. Nothing was saved. If this machine has no '
                       'internet access, download one of these on another machine and copy '
                       f'the file to {_show(where)} (or its other names: '
                       f'{", ".join(entry.file_names()[1:]) or "-"}); run this again to '
                       'verify it')


def _size(mb: int) -> str:
    return f'{mb / 1000:.1f} GB' if mb >= 1000 else f'{mb} MB'


def _list(directory: str) -> None:
    rows = [('name', 'activation', 'used by', 'in ' + directory)]
    for entry in clip_files.CLIP_FILES.values():
        here = next((f for f in entry.file_names()
                     if osp.exists(osp.join(directory, f))), '-')
        rows.append((entry.name, entry.activation, ', '.join(entry.used_by) or '-',
                     'yes' if here != '-' else '-'))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print('\nSources, in the order tried (size approximate; layout; activation; '
          'file in ' + directory + '):')
    for entry in clip_files.CLIP_FILES.values():
        print(entry.name)
        for source in entry.sources:
            sha = f'  sha256 {source.sha256}' if source.sha256 else ''
            print(f'  {source.kind:<10} {source.describe()}')
            print(f'  {"":<10} {source.layout}, {source.activation}, ~{_size(source.size_mb)}, '
                  f'-> {clip_files.dest_name(entry, source)}{sha}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Fetch named CLIP weights (OpenAI URL, then the Hugging Face Hub) '
        'into pretrained/, checking their SHA-256.',
        epilog='Known names: ' + ', '.join(clip_files.model_names())
        + ". '/' may be written '-', the file's extension may be added, case does not "
        'matter.')
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='names, e.g. RN50 ViT-B-16 ViT-B-16/metaclip_fullcc (--list shows them)')
    parser.add_argument('--dir', default=DEFAULT_DIR,
                        help='target folder (default: pretrained/ in the repository)')
    parser.add_argument('--force', action='store_true',
                        help='download again even if a verified file is present')
    parser.add_argument('--list', action='store_true',
                        help='list the known files and exit')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser, parser.parse_args(argv)


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    if args.list:
        _list(args.dir)
        return 0
    if not args.names:
        parser.print_usage(sys.stderr)
        _log('error: name at least one model (or --list); known names: '
             + ', '.join(clip_files.model_names()))
        return 2
    try:
        names = list(dict.fromkeys(clip_files.resolve_name(n) for n in args.names))
    except clip_files.UnknownModelError as exc:
        _log(f'error: {exc}')
        return 2

    failed = []
    for name in names:
        info = clip_files.CLIP_FILES[name]
        try:
            ensure(name, args.dir, force=args.force, progress=not args.no_progress)
        except KeyboardInterrupt:
            _log(f'\ninterrupted: {info.filename} was not saved')
            return 130
        except (DownloadError, hub.HubError) as exc:
            _log(f'error: {exc}')
            failed.append(name)
        except OSError as exc:  # the target folder: permissions, disk full, ...
            _log(f'error: cannot write {info.filename} to {_show(args.dir)}: {exc}')
            failed.append(name)
    if failed:
        _log(f'failed: {", ".join(failed)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
