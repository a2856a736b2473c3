"""The benchmark's report: the printed table and the img/s ratios."""
from typing import List, Tuple


def ratios(rows: List[dict], best: bool = False) -> List[Tuple[str, float]]:
    """The img/s ratios worth reading off a run: ours against the reference
    pipeline, the model against its baseline; from the median iterations, or
    with ``best`` the fastest ones (on a shared machine: the iterations least
    slowed by other load)."""
    out = []
    speed = 'best_img_per_s' if best else 'img_per_s'

    def find(**kw):
        return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]

    for mode in ('whole', 'slide', 'train', 'loop'):
        ours = find(model='model', mode=mode, reference=False)
        cached = [r for r in ours if r['text_cache'] in (True, None)]
        if not cached:
            continue
        cached = cached[0]
        ref = find(model='model', mode=mode, reference=True)
        if ref:
            out.append((f'{mode} inference, ours vs the reference',
                        cached[speed] / ref[0][speed]))
        base = find(model='baseline', mode=mode)
        if base:
            out.append((f'{mode}: model vs baseline',
                        cached[speed] / base[0][speed]))
    for mode in ('whole', 'slide'):  # methods against MaskCLIP
        maskclip = find(model='maskclip', mode=mode)
        for row in find(mode=mode):
            if maskclip and row['model'] not in ('maskclip', 'model',
                                                 'baseline'):
                out.append((f'{mode}: {row["model"]} vs maskclip',
                            row[speed] / maskclip[0][speed]))
    return out


def print_table(infos: List[dict], rows: List[dict]) -> None:
    """The models, the device and load, one line per row, the ratios."""
    info = infos[0]
    for sub in infos:
        role = {'model': '', 'baseline': ' (baseline)'}.get(
            sub['name'], f' as {sub["name"]}')
        print(f'\n{sub["config"]}{role}: {sub["model"]}, '
              f'{sub["params_m"]:.1f} M params, {sub["num_classes"]} '
              'classes, random weights')
    cuda = f', CUDA {info["cuda"]}' if info['cuda'] else ''
    tf32 = info.get('matmul_tf32')
    extras = [name for name, on in (('float32 matmuls in TF32', tf32),
                                    ('full float32 matmuls', tf32 is False),
                                    ('amp', info['amp']),
                                    (f'compile={info["compile"]}',
                                     info['compile']),
                                    ('channels-last', info['channels_last']))
              if on]
    print(f'device {info["device"]} ({info["device_name"]}, '
          f'{info["threads"]} threads), torch {info["torch"]}{cuda}'
          + (f'; {", ".join(extras)}' if extras else ''))
    before, after = info['load_average']
    if before is not None:
        busy = max(before, after or 0) > info['threads']
        print(f'load average {before} before, {after} after' +
              (f' (more than the {info["threads"]} threads: other jobs '
               'shared the cores)' if busy else ''))
    ge = '' if info['peak_resettable'] else '>='
    labels = [('' if r['model'] == 'model' else f'[{r["model"]}] ') +
              r['label'] for r in rows]
    width = max(len(label) for label in labels)
    print(f'{"":{width}s} {"input":>14s} {"img/s":>8s} {"s/iter":>8s} '
          f'{"best":>8s} {"cpu s":>8s} {"peak mem":>12s}')
    for label, row in zip(labels, rows):
        print(f'{label:{width}s} {row["input"]:>14s} '
              f'{row["img_per_s"]:8.3f} {row["s_per_iter"]:8.3f} '
              f'{row["s_min"]:8.3f} {row["cpu_s"]:8.2f} '
              f'{ge:>2s}{row["peak_bytes"] / 2**30:6.2f} GiB')
    print('(img/s, s/iter, cpu s: median iteration; best: fastest iteration)')
    if info['compile']:
        firsts = ', '.join(f'{row["label"]} {row["first_s"]:.1f} s'
                           for row in rows if row['mode'] != 'train'
                           and row['model'] == 'model')
        print(f'first forward (compiles): {firsts}')
    for (name, value), (_, best) in zip(ratios(rows), ratios(rows, True)):
        print(f'ratio, {name}: {value:.2f}x img/s (fastest iterations: '
              f'{best:.2f}x)')
