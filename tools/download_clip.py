#!/usr/bin/env python
"""Download OpenAI CLIP files into ``pretrained/`` and check their SHA-256.

    python tools/download_clip.py RN50 ViT-B/16      # or ViT-B-16, vit-b-16.pt
    python tools/download_clip.py --list
    python tools/download_clip.py RN101 --dir /data/clip --force

Each file is streamed into a temporary file in the target folder while its
SHA-256 is computed, and renamed onto its final name only when the hash is
OpenAI's: an interrupted, truncated or corrupt download never leaves a file
under the final name (the temporary file is removed). A file that is already
there with the right hash is kept; one with another hash is downloaded again
(the old file stays in place until the new one has been checked).

Exit codes: 0 all files present and verified, 1 a download failed (no network,
HTTP error, wrong hash), 2 bad arguments (e.g. an unknown model name).

The table of files (names, URLs, hashes) is ``denseclip/clip/files.py``;
``pretrained/README.md`` lists it and explains how to check a file by hand.
"""
import argparse
import hashlib
import http.client
import importlib.util
import os.path as osp
import sys
import time
import urllib.error
import urllib.request

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


def ensure(name: str, directory: str = DEFAULT_DIR, *, force: bool = False,
           progress: bool = True) -> str:
    """Make ``<directory>/<file>`` the verified CLIP file of ``name``.

    Returns ``'present'`` (already there with the right hash: nothing is
    opened) or ``'downloaded'``. Raises ``clip_files.UnknownModelError`` or
    :class:`DownloadError`.
    """
    info = clip_files.get(name)
    dest = osp.join(directory, info.filename)
    if osp.lexists(dest) and not osp.isfile(dest):
        raise DownloadError(f'{_show(dest)} exists and is not a regular file; move it away first')
    if osp.isfile(dest):
        got = clip_files.sha256_of(dest)
        if got == info.sha256 and not force:
            _log(f'{_show(dest)}: already present, SHA-256 ok ({info.sha256[:12]}...), skipping')
            return 'present'
        if got == info.sha256:
            _log(f'{_show(dest)}: present and correct, downloading again (--force)')
        else:
            _log(f'{_show(dest)}: exists but its SHA-256 is {got}, expected {info.sha256}; '
                 'downloading it again')
    _log(f'{info.name}: downloading {info.url}')
    fetch(info.url, dest, info.sha256, progress=progress)
    _log(f'{_show(dest)}: saved, SHA-256 ok ({info.sha256})')
    return 'downloaded'


def _list(directory: str) -> None:
    rows = [('name', 'file', 'used by', 'in ' + directory)]
    for info in clip_files.CLIP_FILES.values():
        here = 'yes' if osp.isfile(osp.join(directory, info.filename)) else '-'
        rows.append((info.name, info.filename, ', '.join(info.used_by) or '-', here))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    print()
    for info in clip_files.CLIP_FILES.values():
        print(f'{info.filename}  sha256 {info.sha256}')
        print(f'  {info.url}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Download OpenAI CLIP files and verify their SHA-256.',
        epilog='Known names: ' + ', '.join(clip_files.model_names())
        + ". '/' may be written '-', '.pt' may be added, case does not matter.")
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='model names, e.g. RN50 ViT-B/16 (or ViT-B-16, ViT-B-16.pt)')
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
        except NetworkError as exc:
            dest = osp.join(args.dir, info.filename)
            _log(f'error: {exc}. If this machine has no internet access, download that URL '
                 f'on another machine and copy the file to {_show(dest)}; run this again to '
                 'verify it.')
            failed.append(name)
        except DownloadError as exc:
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
