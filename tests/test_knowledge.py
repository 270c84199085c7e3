"""Knowledge graph and user attributes: loading, checks, relation words, the KG retriever and its
place in the hybrid. Hand-written files, milliseconds; one test reads the real ml-100k folder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from recommender import DataError, load_dataset
from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
from recommender.data.knowledge import load_knowledge, relation_phrase, relation_word
from recommender.data.loaders import load_recbole
from recommender.data.split import LeaveOneOutSplit
from recommender.data.users import UserColumnMap, age_band, load_users
from recommender.retrieval.knowledge import RELATION_WEIGHTS, KnowledgeRetriever, knowledge_similarity

ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tFargo\t1996\tCrime\n2\tThe Big Lebowski\t1998\tComedy\n3\tTitanic\t1997\tDrama\n"
    "4\tAliens\t1986\tSci-Fi\n5\tAlien\t1979\tSci-Fi\n6\tAmelie\t2001\tComedy\n"
)
# Items 2 (The Big Lebowski) and 4 (Aliens) have no events: cold.
INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "u1\t1\t5\t1\nu1\t3\t4\t2\nu1\t5\t3\t3\nu2\t6\t4\t1\nu2\t1\t4\t2\nu2\t3\t2\t3\n"
)
LINK = "item_id:token\tentity_id:token\n1\tm.fargo\n2\tm.lebowski\n3\tm.titanic\n4\tm.aliens\n5\tm.alien\n99\tm.ghost\n"
KG = (
    "head_id:token\trelation_id:token\ttail_id:token\n"
    "m.fargo\tfilm.film.directed_by\tm.coen\nm.lebowski\tfilm.film.directed_by\tm.coen\n"
    "m.coen\tfilm.director.film\tm.fargo\n"  # the inverse of a triple above: the same feature
    "m.fargo\tfilm.film.actor\tm.a1\nm.fargo\tfilm.film.actor\tm.a2\nm.fargo\tfilm.film.actor\tm.a3\n"
    "m.lebowski\tfilm.film.actor\tm.a1\nm.lebowski\tfilm.film.actor\tm.a2\nm.lebowski\tfilm.film.actor\tm.a3\n"
    "m.titanic\tfilm.film.directed_by\tm.cameron\nm.aliens\tfilm.film.directed_by\tm.cameron\n"
    "m.alien\tfilm.film.directed_by\tm.scott\nm.alien\tfilm.film.sequel\tm.aliens\nm.aliens\tfilm.film.prequel\tm.alien\n"
    "m.alien\tfilm.film.language\tm.en\nm.aliens\tfilm.film.language\tm.en\nm.ghost\tfilm.film.language\tm.en\n"
)
USER = "user_id:token\tage:token\tgender:token\toccupation:token\nu1\t24\tM\twriter\nu2\t\tF\tartist\nu9\t40\tF\tnone\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path):
    for suffix, text in ((".item", ITEM), (".inter", INTER), (".link", LINK), (".kg", KG), (".user", USER)):
        write(tmp_path / f"toy{suffix}", text)
    return tmp_path


# ---------------------------------------------------------------- loading and checks


def test_recbole_folder_loads_graph_and_users_and_counts_what_it_drops(folder):
    dataset = load_recbole(folder, "toy")
    graph, users = dataset.knowledge, dataset.users
    assert graph is not None and users is not None
    assert graph.n_links == 5 and graph.unknown_item_links == 1  # item 99 is not in the catalogue
    assert dataset.report.unknown_item_links == 1 and dataset.report.absent_user_rows == 1
    assert "dropped 1 knowledge-graph links whose item is not in the catalogue" in dataset.report.lines()
    assert "dropped 1 user-attribute rows of users without interactions" in dataset.report.lines()
    assert graph.relation_counts["film.film.directed_by"] == 5
    assert graph.unused_triples == 1  # m.ghost's language: its film is not in the catalogue
    assert graph.relations == ("series", "director", "cast", "language")
    assert graph.items_sharing("director") == 4 and graph.items_sharing("cast") == 2
    # users: u9 has no events; u2's age is blank (missing), age read as a number by its name
    assert users.columns == ("age", "gender", "occupation") and "u9" not in users
    assert users.value("u1", "age") == 24.0 and users.value("u2", "age") is None
    assert users.value("u2", "occupation") == "artist" and users.value("nobody", "gender") is None
    assert users.column("age") == {"u1": 24.0} and users.age_bands().tolist() == ["<25", "unknown"]


def test_folder_without_side_files_loads_as_before(folder):
    with_side = load_recbole(folder, "toy")
    for suffix in (".kg", ".link", ".user"):
        (folder / f"toy{suffix}").unlink()
    plain = load_recbole(folder, "toy")
    assert plain.knowledge is None and plain.users is None
    assert plain.report == LoadReport(unknown_item_events=0, short_history_users=0)
    assert plain.fingerprint() == with_side.fingerprint()  # caches keyed on it stay valid


def test_graph_without_links_is_a_note_not_an_error(folder):
    (folder / "toy.link").unlink()
    dataset = load_recbole(folder, "toy")
    assert dataset.knowledge is None
    assert dataset.report.notes == ("toy.kg found without toy.link: no knowledge graph loaded",)


@pytest.mark.parametrize(
    "suffix, text, expected",
    [
        (".kg", "head_id:token\trelation_id:token\tobject:token\nm.a\tr\tm.b\n", "line 1: missing column 'tail_id'"),
        (".kg", "", "the file is empty"),
        (
            ".kg",
            "head_id:token\trelation_id:token\ttail_id:token\nm.a\tr\tm.b\nm.a\tr\n",
            "line 3: field 'tail_id' is missing",
        ),
        (
            ".kg",
            "head_id:token\trelation_id:token\ttail_id:token\nm.a\t\tm.b\n",
            "line 2: field 'relation_id' is empty",
        ),
        (".kg", "head_id:token\trelation_id:token\ttail_id:token\n", "line 1: the file has a header but no rows"),
        (".link", "item_id:token\tent:token\n1\tm.a\n", "line 1: missing column 'entity_id'"),
        (".link", "\n\n", "the file is empty"),
        (".link", "item_id:token\tentity_id:token\n1\tm.a\n\n2\n", "line 4: field 'entity_id' is missing"),
        (".user", "user:token\tage:float\nu1\t3\n", "line 1: missing column 'user_id'"),
        (".user", "", "the file is empty"),
        (".user", "user_id:token\tage:float\tgender:token\nu1\t3\tM\nu2\t4\n", "line 3: field 'gender' is missing"),
        (".user", "user_id:token\tage:float\nu1\tthirty\n", "line 2: field 'age' must be a number, got 'thirty'"),
        (".user", "user_id:token\tage:float\nu1\t3\nu1\t4\n", "line 3: duplicate user id 'u1' in field 'user_id'"),
    ],
)
def test_malformed_side_file_fails_with_one_sentence(folder, suffix, text, expected):
    path = write(folder / f"toy{suffix}", text)
    with pytest.raises(DataError) as error:
        load_recbole(folder, "toy")
    message = str(error.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message and message.endswith(".")


def test_generic_csv_forms(tmp_path):
    catalog = Catalog([Item("a", "A"), Item("b", "B"), Item("c", "C")])
    links = write(tmp_path / "links.csv", "item_id,entity_id\na,e.a\nb,e.b\nc,e.c\nzz,e.z\n")
    triples = write(
        tmp_path / "triples.csv", 'head,relation,tail\ne.a,film.film.written_by,"w,1"\ne.b,written by,"w,1"\n'
    )
    graph = load_knowledge(catalog, triples, links)
    assert graph.unknown_item_links == 1 and graph.feature_entities.tolist() == ["w,1", "w,1"]
    assert graph.feature_relations.tolist() == ["writer", "written by"]  # unknown names keep their words
    bad = write(tmp_path / "bad.csv", "head,relation\ne.a,r\n")
    with pytest.raises(DataError, match=r"bad.csv, line 1: missing column 'tail_id' \(or 'tail'\)"):
        load_knowledge(catalog, bad, links)


def test_user_csv_with_a_column_map(tmp_path):
    interactions = Interactions(np.array(["7", "8"]), np.array([0, 0]), np.array([1.0, 2.0]))
    path = write(tmp_path / "people.csv", "uid,years,job,zip\n7,51,doctor,123\n8,19,student,456\n")
    users = load_users(path, interactions, UserColumnMap(user="uid", numeric=("years",), keep=("years", "job")))
    assert users.columns == ("years", "job") and users.value("7", "years") == 51.0
    assert [age_band(users.value(u, "years")) for u in ("7", "8")] == ["45+", "<25"]
    assert [age_band(a) for a in (24.9, 25, 34, 35, 44, 45, None)] == [
        "<25",
        "25-34",
        "25-34",
        "35-44",
        "35-44",
        "45+",
        "unknown",
    ]


# ---------------------------------------------------------------- relation words


def test_relations_between_in_words(folder):
    dataset = load_recbole(folder, "toy")
    graph, row = dataset.knowledge, dataset.catalog.row
    assert graph.relations_between(row("1"), row("2")) == [("director", 1), ("cast", 3)]
    assert graph.relations_between(row("5"), row("4")) == [("sequel", 1), ("language", 1)]  # Aliens follows Alien
    assert graph.relations_between(row("4"), row("5"))[0] == ("prequel", 1)
    assert graph.relations_between(row("1"), row("6")) == []  # Amelie: not linked
    assert graph.describe(row("1"), row("2"), "Fargo (1996)") == [
        "same director as Fargo (1996)",
        "shares 3 cast members with Fargo (1996)",
    ]
    assert graph.describe(row("5"), row("4"), "Alien (1979)")[0] == "sequel to Alien (1979)"
    assert relation_word("film.film.written_by") == relation_word("film.writer.film") == "writer"
    assert relation_word("music.album.release_type") == "release type"
    assert relation_phrase("cast", 1) == "shares a cast member with"
    assert relation_phrase("country", 2) == "shares 2 countries with"


# ---------------------------------------------------------------- the retriever


def ranking_graph(tmp_path):
    """i1 shares only a director with i2, only a language with i3 (and with i4, i5)."""
    catalog = Catalog([Item(f"i{k}", f"Film {k}") for k in range(1, 7)])
    links = write(tmp_path / "l.csv", "item_id,entity_id\n" + "".join(f"i{k},e{k}\n" for k in range(1, 7)))
    rows = [
        "e1,film.film.directed_by,d1",
        "e2,film.film.directed_by,d1",
        "e1,film.film.actor,c1",
        "e6,film.film.actor,c9",
    ]
    rows += [f"e{k},film.film.language,en" for k in (1, 3, 4, 5)] + [
        "e2,film.film.language,xx",
        "e6,film.film.language,xx",
    ]
    triples = write(tmp_path / "t.csv", "head,relation,tail\n" + "\n".join(rows) + "\n")
    return catalog, load_knowledge(catalog, triples, links)


@pytest.mark.parametrize("weights", [None, {}], ids=["priors", "idf-only"])
def test_shared_director_outranks_shared_language_and_cold_items_score(tmp_path, weights):
    catalog, graph = ranking_graph(tmp_path)
    retriever = KnowledgeRetriever(catalog, graph, relation_weights=weights)
    scores = retriever.score_rows(np.array([0]))  # history: i1; no item has any interaction
    assert scores[1] > scores[2] > 0  # director (i2) above language only (i3), both cold
    assert scores[0] == 0  # an item is not its own neighbour
    top = retriever.retrieve(["i1"], k=2)
    assert [catalog.ids[r] for r in top.items][0] == "i2"


def test_recency_weights_and_batch(tmp_path):
    catalog, graph = ranking_graph(tmp_path)
    retriever = KnowledgeRetriever(catalog, graph, decay=0.5)
    one, other = retriever.score_rows(np.array([0])), retriever.score_rows(np.array([5]))
    both = retriever.score_batch([np.array([0, 5]), np.array([], dtype=np.int64)])
    np.testing.assert_allclose(both[0], 0.5 * one + other, rtol=1e-6)  # the newest weighs 1
    assert not both[1].any()
    assert retriever.config()["graph"] == graph.fingerprint()


def test_batch_scores_are_the_recency_weights_times_the_whole_similarity(tmp_path):
    """Only the touched similarity rows enter the product; the result is the full-matrix one."""
    catalog, graph = ranking_graph(tmp_path)
    retriever = KnowledgeRetriever(catalog, graph, decay=0.8, window=3)
    histories = [np.array([0, 5, 0, 3]), np.array([2]), np.array([4, 1])]
    weights = np.zeros((len(histories), len(catalog)))
    for b, history in enumerate(histories):
        for age, row in enumerate(history[-3:][::-1]):
            weights[b, row] += 0.8**age
    expected = weights @ retriever.similarity.toarray().astype(np.float64)
    np.testing.assert_allclose(retriever.score_batch(histories), expected, rtol=1e-12, atol=1e-12)


def test_similarity_pruning_and_budget(tmp_path):
    catalog, graph = ranking_graph(tmp_path)
    weights = np.ones(graph.features.shape[1])
    full = knowledge_similarity(graph.features, weights, None).toarray()
    np.testing.assert_allclose(full, full.T, atol=1e-6)
    pruned = knowledge_similarity(graph.features, weights, 1, block_entries=1).toarray()  # row by row
    assert (np.count_nonzero(pruned, axis=1) <= 1).all()
    np.testing.assert_allclose(pruned.max(axis=1), full.max(axis=1), rtol=1e-6)
    # A budget below 'en' (df 4: 16 pairs) leaves the common language out, the director in.
    cheap = knowledge_similarity(graph.features, weights, None, pair_budget=10).toarray()
    assert cheap[0, 1] > 0 and cheap[0, 2] == 0


def test_hybrid_takes_knowledge_only_when_asked(folder, tmp_path, monkeypatch):
    from recommender.retrieval.hybrid import build_components

    dataset = load_recbole(folder, "toy")
    split = LeaveOneOutSplit(dataset.interactions)
    vectors = np.eye(len(dataset.catalog), dtype=np.float32)
    monkeypatch.setattr("recommender.retrieval.embeddings.item_embeddings", lambda catalog, encoder, cache_dir: vectors)
    encoder = object()
    assert "knowledge" not in build_components(dataset, split, encoder, tmp_path)  # type: ignore[arg-type]
    components = build_components(dataset, split, encoder, tmp_path, knowledge=True)  # type: ignore[arg-type]
    assert list(components) == ["pop", "cooccurrence", "embedding", "knowledge"]
    plain = Dataset("plain", dataset.catalog, dataset.interactions, dataset.report)
    assert "knowledge" not in build_components(plain, split, encoder, tmp_path, knowledge=True)  # type: ignore[arg-type]


def test_retriever_follows_an_extended_catalogue(tmp_path):
    catalog, graph = ranking_graph(tmp_path)
    bigger = Catalog(list(catalog.items) + [Item("new", "New Film")])
    retriever = KnowledgeRetriever(bigger, graph)
    assert retriever.score_rows(np.array([0])).shape == (7,) and retriever.knowledge.n_items == 7
    old = KnowledgeRetriever(catalog, graph)
    grown = old.extended(bigger)  # an incremental update: no rebuild, the new item scores 0
    np.testing.assert_allclose(grown.score_rows(np.array([0, 6])), retriever.score_rows(np.array([0, 6])))
    with pytest.raises(ValueError, match="appended"):
        old.extended(Catalog(list(catalog.items[:3])))


# ---------------------------------------------------------------- the real ml-100k folder


def test_ml100k_graph_and_users():
    started = time.perf_counter()
    dataset = load_dataset("ml-100k")
    seconds = time.perf_counter() - started
    graph, users = dataset.knowledge, dataset.users
    assert graph is not None and users is not None
    # ml-100k.link has 1,599 lines: a header and 1,598 links, all to catalogue items.
    assert graph.n_links == 1598 and graph.unknown_item_links == 0
    assert sum(graph.relation_counts.values()) == 91_631
    counts = graph.relation_counts
    assert (counts["film.film.directed_by"], counts["film.film.written_by"], counts["film.film.actor"]) == (
        1727,
        2381,
        40152,
    )
    assert counts["film.film.sequel"] == counts["film.film.prequel"] == 312
    # The design card's figures: items sharing a director, a writer, an actor with another item.
    assert [graph.items_sharing(word) for word in ("director", "writer", "cast")] == [878, 724, 1499]
    assert len(users) == 943 and users.missing_users == 0 and users.value("1", "occupation") == "technician"
    assert seconds < 5  # with the graph: ~0.3 s on 2 cores
    assert RELATION_WEIGHTS["director"] > RELATION_WEIGHTS["language"]
