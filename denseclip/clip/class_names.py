"""Class names with synonyms: the names of each class, the flat list of text
queries they give, and which class each query belongs to (docs/ovss.md)."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

SYNONYM_SEPARATOR = ','

# one class: a name, or its synonyms (the first is the class's label)
ClassEntry = Union[str, Sequence[str]]


class ClassNames:
    """The names of ``K`` classes in label order, each one or more synonyms.

    ``queries`` (``Q >= K`` names, class by class) are what the text tower
    encodes; ``query_class[q]`` is the class of query ``q``; ``names`` the
    first synonym of each class (its label). Names are stripped; an empty
    name or a name in two places is a ``ValueError`` naming ``source``.
    """

    def __init__(self, synonyms: Sequence[ClassEntry],
                 source: str = 'the class list',
                 where: Optional[Sequence[str]] = None):
        sets = []
        for entry in synonyms:
            names = [entry] if isinstance(entry, str) else list(entry)
            sets.append(tuple(str(n).strip() for n in names))
        where = list(where) if where is not None else [
            f'class {i}' for i in range(len(sets))]
        if not sets:
            raise ValueError(f'{source} holds no class names')
        first = {}
        for i, names in enumerate(sets):
            if not names:
                raise ValueError(f'{where[i]} of {source} has no name')
            for name in names:
                if not name:
                    raise ValueError(
                        f'{where[i]} of {source} has an empty name '
                        f'({", ".join(repr(n) for n in names)})')
                if name in first:
                    raise ValueError(
                        f'{source}: {name!r} is {_at(first[name])} and again '
                        f'{_at(where[i])}; each name once (a query in two '
                        f'classes always ties)')
                first[name] = where[i]
        self.synonyms: Tuple[Tuple[str, ...], ...] = tuple(sets)
        self.source = source

    @property
    def names(self) -> List[str]:
        """The label of each class (its first synonym)."""
        return [names[0] for names in self.synonyms]

    @property
    def queries(self) -> List[str]:
        """Every name, class by class: what the text tower encodes."""
        return [name for names in self.synonyms for name in names]

    @property
    def query_class(self) -> List[int]:
        """The class of each query."""
        return [k for k, names in enumerate(self.synonyms) for _ in names]

    @property
    def num_classes(self) -> int:
        return len(self.synonyms)

    @property
    def num_queries(self) -> int:
        return sum(len(names) for names in self.synonyms)

    @property
    def has_synonyms(self) -> bool:
        return self.num_queries > self.num_classes

    def label(self, k: int, limit: int = 1) -> str:
        """Class ``k``'s first ``limit`` names, ``+n`` for the rest."""
        names = self.synonyms[k]
        more = f' (+{len(names) - limit})' if len(names) > limit else ''
        return ', '.join(names[:limit]) + more

    def single_names(self, owner: str = '') -> List[str]:
        """One name per class; synonyms are an error naming the class."""
        for k, names in enumerate(self.synonyms):
            if len(names) > 1:
                shown = ', '.join(names[:3]) + (', ...' if len(names) > 3
                                                else '')
                raise ValueError(
                    f'{owner + ": " if owner else ""}class {k} of '
                    f'{self.source} has {len(names)} synonyms ({shown}) but '
                    f'this model takes one name per class')
        return self.names

    def __eq__(self, other) -> bool:
        return isinstance(other, ClassNames) and \
            self.synonyms == other.synonyms

    def __hash__(self) -> int:
        return hash(self.synonyms)

    def __len__(self) -> int:
        return self.num_classes

    def __repr__(self) -> str:
        return (f'ClassNames({self.num_classes} classes, {self.num_queries} '
                f'queries, from {self.source})')


def _at(where: str) -> str:
    return f'on {where}' if where.startswith('line') else where


def read_class_name_sets(path: str) -> ClassNames:
    """A class-name file: one class per line, its synonyms separated by
    commas. UTF-8 (a byte-order mark is allowed), blank lines skipped; a
    byte that is not UTF-8, an empty synonym or a name given twice is a
    ``ValueError`` naming the file and line(s)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'class name file {path} does not exist')
    with open(path, 'rb') as f:
        raw = f.read()
    sets, where = [], []
    for number, line in enumerate(raw.split(b'\n'), 1):
        try:
            text = line.decode('utf-8-sig' if number == 1 else 'utf-8')
        except UnicodeDecodeError as err:
            raise ValueError(
                f'class name file {path}, line {number}: byte '
                f'0x{line[err.start]:02x} at column {err.start + 1} is not '
                'UTF-8; save the file as UTF-8') from None
        if not text.strip():
            continue
        names = [n.strip() for n in text.split(SYNONYM_SEPARATOR)]
        if not all(names):
            raise ValueError(
                f'class name file {path}, line {number}: an empty synonym '
                f'in {text.strip()!r} (synonyms are separated by single '
                f'commas)')
        sets.append(names)
        where.append(f'line {number}')
    if not sets:
        raise ValueError(f'class name file {path} holds no class names')
    return ClassNames(sets, f'class name file {path}', where)
