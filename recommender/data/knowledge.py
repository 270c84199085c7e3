"""Knowledge-graph triples and item-entity links: what films share (director, writer, cast, ...).

Two files, RecBole atomic or a generic CSV:
- links, ``<name>.link`` (``item_id:token, entity_id:token``, tab-separated) or a CSV with the
  columns ``item_id,entity_id`` (``item``/``entity`` also accepted): catalogue item -> entity;
- triples, ``<name>.kg`` (``head_id:token, relation_id:token, tail_id:token``) or a CSV with
  the columns ``head,relation,tail`` (``head_id``/``relation_id``/``tail_id`` also accepted).
A ``.csv`` file is comma-separated with CSV quoting; any other suffix is tab-separated. Header
fields may carry RecBole's ``:type`` suffix.

A triple with a catalogue film at one end gives that film the feature (relation word, entity at
the other end): RecBole's ``film.film.directed_by`` and its inverse ``film.director.film`` both
become "director", so a feature is something films share. A triple between two catalogue films
(sequel, prequel) is an item-item link; sequel/prequel chains, through films outside the
catalogue too, also give each of their films a "series" feature. Links to items not in the
catalogue are dropped and counted. Pure numpy / scipy.sparse / pyarrow.

    graph = load_knowledge(catalog, "ml-100k.kg", "ml-100k.link")
    graph.relations_between(history_row, candidate_row)          # [("director", 1), ("cast", 3)]
    graph.describe(history_row, candidate_row, "Fargo (1996)")   # ["same director as Fargo (1996)", ...]
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recommender.data.catalog import Catalog, DataError
from recommender.data.columnar import ID, IdColumn, Layout, data_line, first_line, read_columns, split_header

if TYPE_CHECKING:  # scipy is imported where a graph is built: ``import recommender`` stays light
    from scipy import sparse

LINK_COLUMNS = {"item": ("item_id", "item"), "entity": ("entity_id", "entity")}
TRIPLE_COLUMNS = {"head": ("head_id", "head"), "relation": ("relation_id", "relation"), "tail": ("tail_id", "tail")}
SERIES = "series"  # derived relation: films of one sequel/prequel chain
INVERSE = {"sequel": "prequel", "prequel": "sequel"}  # b is a's sequel <=> a is b's prequel
# Freebase relation names in RecBole's ml-100k.kg (both directions) -> the short word a prompt carries.
RELATION_WORDS = {
    "film.film.directed_by": "director", "film.director.film": "director",
    "film.film.written_by": "writer", "film.writer.film": "writer",
    "film.film.actor": "cast", "film.actor.film": "cast",
    "film.film.produced_by": "producer", "film.producer.film": "producer",
    "film.film.cinematography": "cinematographer", "film.cinematographer.film": "cinematographer",
    "film.film.production_companies": "studio", "film.production_company.films": "studio",
    "film.film.subjects": "subject", "film.film_subject.films": "subject",
    "film.film.genre": "genre", "film.film_genre.films_in_this_genre": "genre",
    "film.film.rating": "content rating", "film.content_rating.film": "content rating",
    "film.film.award_won": "award", "film.film.award_nomination": "award nomination",
    "film.film.language": "language", "film.film.country": "country",
    "film.film.sequel": "sequel", "film.film.prequel": "prequel",
}  # fmt: skip
# Most telling first: the order evidence is listed in.
WORD_ORDER = (
    "sequel", "prequel", SERIES, "director", "writer", "cast", "producer", "cinematographer", "subject", "studio",
    "award", "award nomination", "genre", "content rating", "language", "country",
)  # fmt: skip
PLURALS = {"cast": "cast members", "country": "countries", "studio": "studios"}


def relation_word(relation: str) -> str:
    """Short word of a relation name: ``film.film.directed_by`` -> "director"; an unknown name
    gives its last dotted part with spaces (``music.album.artist`` -> "artist")."""
    if relation in RELATION_WORDS:
        return RELATION_WORDS[relation]
    return relation.rsplit(".", 1)[-1].replace("_", " ").strip() or relation


def relation_phrase(word: str, count: int = 1) -> str:
    """How a candidate relates to a history film, to be followed by that film's title:
    "sequel to", "same director as", "shares 3 cast members with"."""
    if word in INVERSE:
        return f"{word} to"
    if word == SERIES:
        return "same series as"
    if count <= 1:
        return "shares a cast member with" if word == "cast" else f"same {word} as"
    return f"shares {count} {PLURALS.get(word, word + 's')} with"


def _word_rank(word: str) -> tuple[int, str]:
    return (WORD_ORDER.index(word), "") if word in WORD_ORDER else (len(WORD_ORDER), word)


# ---------------------------------------------------------------- the graph


@dataclass(frozen=True, eq=False)
class KnowledgeGraph:
    """Per catalogue row, its entities per relation word, as a sparse items x features matrix.

    A feature column is one (relation word, entity) pair; ``features[i, f] == 1`` when item row
    ``i`` has it. ``item_links`` holds catalogue film -> film triples (head row, tail row) with the
    code of their word in ``link_words`` plus one.
    """

    item_ids: tuple[str, ...]  # [N] catalogue ids, in row order
    features: sparse.csr_matrix  # [N, F] float32 0/1
    feature_relations: np.ndarray  # [F] str relation word of each feature column
    feature_entities: np.ndarray  # [F] str entity id of each feature column
    item_links: sparse.csr_matrix  # [N, N] int16 word code + 1 of film -> film triples
    link_words: tuple[str, ...]
    entities: np.ndarray  # [N] str entity of each item ('' when unlinked)
    relation_counts: Mapping[str, int]  # triples per relation name of the file
    n_links: int = 0  # links kept (their item is in the catalogue)
    unknown_item_links: int = 0  # links dropped: their item is not in the catalogue
    unused_triples: int = 0  # triples with no catalogue film at either end

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def relations(self) -> tuple[str, ...]:
        """Relation words of the feature columns, most telling first."""
        return tuple(sorted(set(self.feature_relations.tolist()), key=_word_rank))

    def items_sharing(self, word: str) -> int:
        """Items that share at least one ``word`` entity with another item (ml-100k: director 878)."""
        columns = self.feature_relations == word
        block = self.features[:, np.flatnonzero(columns)].tocsc()
        shared = np.flatnonzero(np.diff(block.indptr) >= 2)
        return int(np.count_nonzero(np.diff(block[:, shared].tocsr().indptr)))

    def relations_between(self, row_a: int, row_b: int) -> list[tuple[str, int]]:
        """How item ``row_b`` relates to item ``row_a``, most telling first: a direct link read
        from ``row_b``'s side ("sequel": b is a's sequel) and the count of shared entities per word."""
        counts: Counter[str] = Counter()
        for head, tail, invert in ((row_a, row_b, False), (row_b, row_a, True)):
            code = int(self.item_links[head, tail])
            if code:
                word = self.link_words[code - 1]
                counts[INVERSE.get(word, word) if invert else word] = 1
        indptr, indices = self.features.indptr, self.features.indices
        shared = np.intersect1d(indices[indptr[row_a] : indptr[row_a + 1]], indices[indptr[row_b] : indptr[row_b + 1]])
        if counts.keys() & INVERSE.keys():
            shared = shared[self.feature_relations[shared] != SERIES]  # "sequel" already says it
        counts.update(self.feature_relations[shared].tolist())
        return sorted(counts.items(), key=lambda pair: _word_rank(pair[0]))

    def describe(self, row_a: int, row_b: int, title_a: str) -> list[str]:
        """Evidence lines of candidate ``row_b`` against history item ``row_a`` titled ``title_a``:
        ["sequel to Toy Story (1995)", "shares 3 cast members with Toy Story (1995)"]."""
        return [f"{relation_phrase(word, count)} {title_a}" for word, count in self.relations_between(row_a, row_b)]

    def aligned(self, catalog: Catalog) -> KnowledgeGraph:
        """The graph re-indexed to ``catalog``'s rows (e.g. after items were appended): items
        it does not know get empty rows. Returns ``self`` when the rows already match."""
        if tuple(catalog.ids) == self.item_ids:
            return self
        from scipy import sparse

        old = {item_id: row for row, item_id in enumerate(self.item_ids)}
        source = np.array([old.get(item_id, -1) for item_id in catalog.ids], dtype=np.int64)
        hit = np.flatnonzero(source >= 0)
        pick = sparse.csr_matrix((np.ones(len(hit)), (hit, source[hit])), shape=(len(catalog), self.n_items))
        entities = np.where(source >= 0, self.entities[np.maximum(source, 0)], "")
        return KnowledgeGraph(
            tuple(catalog.ids), (pick @ self.features).tocsr().astype(np.float32),
            self.feature_relations, self.feature_entities,
            (pick @ self.item_links @ pick.T).tocsr().astype(np.int16), self.link_words, entities,
            self.relation_counts, self.n_links, self.unknown_item_links, self.unused_triples,
        )  # fmt: skip

    def fingerprint(self) -> str:
        """Hash of the features and links: keys anything tuned or built on the graph."""
        digest = hashlib.sha256()
        for array in (self.features.indptr, self.features.indices, self.item_links.indptr, self.item_links.indices):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        digest.update(self.item_links.data.astype(np.int64).tobytes())
        digest.update("\x1f".join(self.item_ids).encode())
        pairs = np.char.add(np.char.add(self.feature_relations, "\x1d"), self.feature_entities)
        digest.update("\x1f".join(pairs.tolist()).encode())
        digest.update("\x1f".join(self.link_words).encode())
        return digest.hexdigest()[:16]

    def summary(self) -> str:
        linked = int(np.count_nonzero(np.diff(self.features.indptr)))
        return (
            f"knowledge graph: {self.n_links} item links ({linked} items with features), "
            f"{sum(self.relation_counts.values())} triples, {self.features.shape[1]} features"
        )


# ---------------------------------------------------------------- loading


def load_knowledge(
    catalog: Catalog, triples_path: str | Path, links_path: str | Path, encoding: str = "utf-8"
) -> KnowledgeGraph:
    """Read and check a triples file and a links file (RecBole atomic or CSV, see the module doc)
    and build the graph over ``catalog``'s rows; links to unknown items are dropped and counted."""
    links, _ = read_id_table(Path(links_path), LINK_COLUMNS, encoding)
    triples, _ = read_id_table(Path(triples_path), TRIPLE_COLUMNS, encoding)
    return build_knowledge(catalog, links, triples)


def build_knowledge(catalog: Catalog, links: Mapping[str, IdColumn], triples: Mapping[str, IdColumn]) -> KnowledgeGraph:
    """The graph from dictionary-encoded columns (``item``/``entity``; ``head``/``relation``/``tail``).

    Vectorised: ids are mapped once per distinct value, then every triple is placed by array
    operations (ML-100k's 91,631 triples: a few hundred ms with the read)."""
    n = len(catalog)
    item, entity, head, relation, tail = (
        links["item"],
        links["entity"],
        triples["head"],
        triples["relation"],
        triples["tail"],
    )
    rows_of = np.array([catalog.index.get(value, -1) for value in item.values], dtype=np.int64)
    link_rows = rows_of[item.codes]  # [L]
    keep = link_rows >= 0
    # One entity vocabulary for the three id columns; each column's dictionary maps into it once.
    names = np.array(entity.values + head.values + tail.values, dtype=str)
    vocabulary, inverse = np.unique(names, return_inverse=True)
    link_map, head_map, tail_map = np.split(inverse.reshape(-1), np.cumsum([len(entity.values), len(head.values)]))
    link_entities, link_rows = link_map[entity.codes][keep], link_rows[keep]
    heads, tails = head_map[head.codes], tail_map[tail.codes]  # [T]
    n_entities = len(vocabulary)
    pairs = np.unique(link_entities.astype(np.int64) * max(n, 1) + link_rows)  # entity-major, deduplicated
    entity_indptr = np.concatenate([[0], np.cumsum(np.bincount(pairs // max(n, 1), minlength=n_entities))])
    entity_items = pairs % max(n, 1)
    linked = np.diff(entity_indptr) > 0  # [n_entities] entities that are catalogue films

    raw_words = [relation_word(value) for value in relation.values]
    series_present = any(word in INVERSE for word in raw_words)
    words = sorted(set(raw_words) | ({SERIES} if series_present else set()), key=_word_rank)
    word_codes = np.array([words.index(word) for word in raw_words], dtype=np.int64)[relation.codes]  # [T]
    is_series = np.isin(word_codes, [words.index(word) for word in INVERSE if word in words])
    head_film, tail_film = linked[heads], linked[tails]

    # Film at one end: the film gets (word, entity at the other end).
    rows, keys = [], []
    for films, others, chosen in ((heads, tails, head_film & ~tail_film), (tails, heads, tail_film & ~head_film)):
        chosen &= ~is_series
        position, item_rows = _expand(films[chosen], entity_indptr, entity_items)
        rows.append(item_rows)
        keys.append(word_codes[chosen][position] * n_entities + others[chosen][position])
    if series_present:
        rows_s, keys_s = _series_features(heads[is_series], tails[is_series], n_entities, entity_indptr, entity_items)
        rows.append(rows_s)
        keys.append(words.index(SERIES) * n_entities + keys_s)
    features, columns = _feature_matrix(np.concatenate(rows), np.concatenate(keys), n)
    item_links = _item_links(heads, tails, word_codes, head_film & tail_film, entity_indptr, entity_items, n)
    item_entities = np.full(n, "", dtype=vocabulary.dtype)
    item_entities[link_rows] = vocabulary[link_entities]
    counts = np.bincount(relation.codes, minlength=len(relation.values))
    return KnowledgeGraph(
        item_ids=tuple(catalog.ids),
        features=features,
        feature_relations=np.array(words, dtype=str)[columns // n_entities] if len(columns) else np.zeros(0, str),
        feature_entities=vocabulary[columns % n_entities] if len(columns) else np.zeros(0, str),
        item_links=item_links,
        link_words=tuple(words),
        entities=item_entities,
        relation_counts={value: int(count) for value, count in zip(relation.values, counts)},
        n_links=int(np.count_nonzero(keep)),
        unknown_item_links=int(len(keep) - np.count_nonzero(keep)),
        unused_triples=int(np.count_nonzero(~head_film & ~tail_film)),
    )


def _expand(entities: np.ndarray, indptr: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For [T] entity codes: (position in ``entities``, item row) of every item each entity links to."""
    counts = indptr[entities + 1] - indptr[entities]
    position = np.repeat(np.arange(len(entities)), counts)
    offset = np.arange(len(position)) - np.repeat(np.cumsum(counts) - counts, counts)
    return position, items[indptr[entities][position] + offset]


def _series_features(
    heads: np.ndarray, tails: np.ndarray, n_entities: int, indptr: np.ndarray, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(item row, chain entity) of every catalogue film in a sequel/prequel chain; a chain is
    named by its smallest entity code. Films outside the catalogue still join two chain parts."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    graph = sparse.csr_matrix((np.ones(len(heads)), (heads, tails)), shape=(n_entities, n_entities))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if len(labels) else 0, n_entities, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n_entities))
    members = np.unique(np.concatenate([heads, tails]))
    position, rows = _expand(members, indptr, items)
    return rows, first[labels[members[position]]]


def _feature_matrix(rows: np.ndarray, keys: np.ndarray, n: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """0/1 [N, F] CSR over the distinct keys (sorted), and those keys."""
    from scipy import sparse

    columns, codes = np.unique(keys, return_inverse=True)
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, codes.reshape(-1))), shape=(n, len(columns)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a triple repeated (or given in both directions) is one feature
    return matrix, columns


def _item_links(
    heads: np.ndarray,
    tails: np.ndarray,
    words: np.ndarray,
    both: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    n: int,
) -> sparse.csr_matrix:
    """[N, N] film -> film links, value = word code + 1 (the first triple of a pair wins)."""
    position, head_rows = _expand(heads[both], indptr, items)
    inner, tail_rows = _expand(tails[both][position], indptr, items)
    head_rows, codes = head_rows[inner], words[both][position][inner] + 1
    _, first = np.unique(head_rows * max(n, 1) + tail_rows, return_index=True)
    from scipy import sparse

    return sparse.csr_matrix((codes[first].astype(np.int16), (head_rows[first], tail_rows[first])), shape=(n, n))


# ---------------------------------------------------------------- headed id tables (also read by users.py)


def read_id_table(
    path: Path, wanted: Mapping[str, Sequence[str]], encoding: str = "utf-8", every: bool = False
) -> tuple[dict[str, IdColumn], list[tuple[str, str]]]:
    """Columns of a headed table as dictionary-encoded strings, parsed by pyarrow.

    ``wanted``: label -> accepted header names (first present wins); each is required and may not
    be empty. ``every=True`` also returns the other columns, labelled by their header name.
    Returns the columns and (header name, ':type' suffix or '') of every header field. Failures
    are one ``DataError`` sentence naming the file, the line and the field.
    """
    header_line, text = first_line(path, encoding)
    comma = path.suffix.lower() == ".csv"
    header = [
        (name.strip(), kind.strip())
        for name, _, kind in (f.partition(":") for f in split_header(text, "," if comma else "\t", comma))
    ]
    names = [name for name, _ in header]
    labels: dict[str, int] = {}
    for label, accepted in wanted.items():
        found = next((name for name in accepted if name in names), None)
        if found is None:
            also = "".join(f" (or {name!r})" for name in accepted[1:])
            raise DataError(
                f"{path}, line {header_line}: missing column {accepted[0]!r}{also} (found: {', '.join(names)})."
            )
        labels[label] = names.index(found)
    if every:
        labels.update({name: i for i, name in enumerate(names) if i not in labels.values() and name not in labels})
    layout = Layout(path, "," if comma else "\t", comma, len(names), header_line, encoding)
    try:
        columns = read_columns(layout, {label: (position, ID) for label, position in labels.items()})
    except DataError:
        _name_short_row(layout, names)  # a row with too few fields: say which field is missing
        raise
    if not len(next(iter(columns.values())).codes):
        raise DataError(f"{path}, line {header_line}: the file has a header but no rows.")
    for label in wanted:
        column = columns[label]
        assert isinstance(column, IdColumn)
        if "" in column.values:
            row = int(np.flatnonzero(column.codes == column.values.index(""))[0])
            raise DataError(f"{path}, line {data_line(path, row)}: field {names[labels[label]]!r} is empty.")
    return columns, header  # type: ignore[return-value]


def _name_short_row(layout: Layout, names: list[str]) -> None:
    """Raise for the first data row with fewer fields than the header, naming the missing field."""
    with layout.path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode(layout.encoding, errors="replace").rstrip("\r\n")
            if number <= layout.header_line or not text.strip():
                continue
            values = split_header(text, layout.delimiter, layout.quoting)
            if len(values) < len(names):
                raise DataError(
                    f"{layout.path}, line {number}: field {names[len(values)]!r} is missing "
                    f"(expected {len(names)} fields, found {len(values)})."
                )
