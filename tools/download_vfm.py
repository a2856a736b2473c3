#!/usr/bin/env python
"""Fetch named VFM weights (DINO, DINOv2) into ``pretrained/`` from the hub.

    python tools/download_vfm.py dino_vitb8                # ProxyCLIP's default VFM
    python tools/download_vfm.py dino_vitb16 dinov2_vitb14_reg
    python tools/download_vfm.py --list                   # names, architecture, sources, size
    python tools/download_vfm.py dino_vitb8 --dir /data/vfm --force

Each name's sources (``denseclip/vfm/files.py``) are tried in order until one
answers: timm's repository (``model.safetensors``, else ``pytorch_model.bin``)
lands as ``pretrained/<name>.safetensors`` (``.bin``), transformers' as the
folder ``pretrained/<name>-hf/`` (weights and ``config.json``). Downloads go
through ``huggingface_hub`` (its cache, ``HF_TOKEN``, ``HF_ENDPOINT``) and are
copied under a temporary name, renamed only after their SHA-256 matched the
one the hub states (:mod:`denseclip.clip.hub`). A file already present is
kept (``--force`` fetches it again).

Exit codes: 0 all present, 1 a download failed, 2 bad arguments.
"""
import argparse
import importlib
import importlib.util
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_DIR = osp.join(REPO_ROOT, 'pretrained')


def _load_module(name: str):
    """``denseclip/<name>.py`` (standard library only) without importing the
    package (which needs torch and mmseg); the installed one outside a
    checkout."""
    path = osp.join(REPO_ROOT, 'denseclip', f'{name}.py')
    if 'denseclip' not in sys.modules and osp.isfile(path):
        spec = importlib.util.spec_from_file_location(
            '_denseclip_' + name.replace('/', '_'), path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module('denseclip.' + name.replace('/', '.'))


vfm_files = _load_module('vfm/files')
hub = _load_module('clip/hub')


class DownloadError(RuntimeError):
    """Every source failed; the message says what to do."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fetch(entry, source, directory: str) -> str:
    weights = hub.fetch_hub_file(source.repo, source.filenames)
    if source.layout == vfm_files.TRANSFORMERS:
        files = [weights, hub.fetch_hub_file(
            source.repo, [vfm_files.TRANSFORMERS_CONFIG])]
        dest = osp.join(directory, vfm_files.dest_name(entry, source))
        hub.install_folder(files, dest)
    else:
        files = [weights]
        dest = osp.join(directory,
                        vfm_files.dest_name(entry, source, weights.filename))
        hub.install_file(weights, dest)
    for cached in files:
        check = (f"SHA-256 ok, the hub's ({cached.sha256})" if cached.sha256
                 else 'the hub states no SHA-256 for it: not checked')
        _log(f'{source.repo}/{cached.filename}: {check}')
    return dest


def ensure(name: str, directory: str = DEFAULT_DIR, *,
           force: bool = False) -> str:
    """Make the weights of ``name`` present in ``directory``: ``'present'``
    or ``'downloaded'``. Raises ``hub.HubChecksumError`` (a wrong hash: no
    other source is tried) or :class:`DownloadError`."""
    entry = vfm_files.get(name)
    present = vfm_files.existing_path(entry.name, directory)
    if present is not None and not force:
        _log(f'{present}: already present, skipping; --force fetches it again')
        return 'present'
    failures = []
    for source in entry.sources:
        _log(f'{entry.name}: fetching {source.describe()} ({source.layout} '
             f'layout, ~{source.size_mb} MB) from {hub.endpoint()}')
        try:
            dest = _fetch(entry, source, directory)
        except hub.HubChecksumError:
            raise
        except hub.HubNetworkError as exc:
            failures.append(str(exc))
            break  # the next source is on the same unreachable hub
        except hub.HubError as exc:
            failures.append(str(exc))
            if source is not entry.sources[-1]:
                _log(f'{entry.name}: {exc}; trying the next source')
            continue
        _log(f'{dest}: saved')
        return 'downloaded'
    raise DownloadError(
        '; '.join(failures) + '. Nothing was saved. Without internet here, '
        'download one of them on another machine and copy it to '
        f'{osp.join(directory, entry.file_names()[0])} (or '
        f'{", ".join(entry.file_names()[1:])})')


def _list(directory: str) -> None:
    for entry in vfm_files.VFM_FILES.values():
        arch = entry.arch
        here = vfm_files.existing_path(entry.name, directory)
        print(f'{entry.name}: {entry.family} ViT patch {arch.patch_size}, '
              f'width {arch.width}, {arch.layers} layers, {arch.heads} heads'
              f'{f", {arch.num_register_tokens} registers" if arch.num_register_tokens else ""}'
              f', trained at {arch.image_size} px, {entry.params_m}M params; '
              f'in {directory}: {here or "-"}')
        for source in entry.sources:
            print(f'  {source.describe()}  {source.layout}, '
                  f'~{source.size_mb} MB -> {vfm_files.dest_name(entry, source)}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Fetch named VFM weights (DINO, DINOv2) from the Hugging '
        'Face Hub into pretrained/, checking their SHA-256.',
        epilog='Known names: ' + ', '.join(vfm_files.vfm_names()))
    parser.add_argument('names', nargs='*', metavar='NAME')
    parser.add_argument('--dir', default=DEFAULT_DIR,
                        help='target folder (default: pretrained/)')
    parser.add_argument('--force', action='store_true',
                        help='download again even if present')
    parser.add_argument('--list', action='store_true',
                        help='list the known weights and exit')
    args = parser.parse_args(argv)
    if args.list:
        _list(args.dir)
        return 0
    if not args.names:
        _log('error: name at least one VFM (or --list); known names: '
             + ', '.join(vfm_files.vfm_names()))
        return 2
    try:
        names = list(dict.fromkeys(vfm_files.get(n).name for n in args.names))
    except vfm_files.UnknownVFMError as exc:
        _log(f'error: {exc}')
        return 2
    failed = []
    for name in names:
        try:
            ensure(name, args.dir, force=args.force)
        except (DownloadError, hub.HubError) as exc:
            _log(f'error: {exc}')
            failed.append(name)
        except OSError as exc:
            _log(f'error: cannot write {name} to {args.dir}: {exc}')
            failed.append(name)
    if failed:
        _log(f'failed: {", ".join(failed)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
