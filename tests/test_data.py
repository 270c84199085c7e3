"""Loaders: every supported format, and one clear sentence for every kind of bad input."""

from pathlib import Path

import numpy as np
import pytest

from recommender import ColumnMap, DataError, load_dataset, load_generic
from recommender.data import Catalog, Item
from recommender.data.loaders import load_movielens_100k_raw, load_recbole


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture
def atomic(tmp_path):
    write(
        tmp_path / "toy.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n2\tFargo\t1996\tCrime Drama\n3\tAlien\t1979\tHorror Sci-Fi\n",
    )
    write(
        tmp_path / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\t1\t5\t10\nu1\t2\t4\t20\nu1\t3\t3\t30\nu2\t2\t4\t5\nu2\t99\t1\t6\n",
    )
    return tmp_path


def test_builtin_ml100k_counts():
    dataset = load_dataset("ml-100k")
    assert dataset.interactions.n_users == 943
    assert len(dataset.catalog) == 1682
    assert len(dataset.interactions) == 100_000
    assert dataset.catalog["50"].title == "Star Wars"
    assert "Sci-Fi" in dataset.catalog["50"].genres and dataset.catalog["50"].year == 1977


def test_recbole_atomic_files_and_unknown_items_reported(atomic):
    dataset = load_recbole(atomic, "toy")
    assert len(dataset.catalog) == 3 and len(dataset.interactions) == 4
    assert dataset.report.unknown_item_events == 1
    assert dataset.report.short_history_users == 1
    assert any("dropped 1 interactions" in line for line in dataset.report.lines())
    assert dataset.catalog["1"].genres == ("Animation", "Children's", "Comedy")
    assert load_dataset(atomic).name == "toy"


def test_movielens_100k_raw_layout(tmp_path):
    flags = ["0"] * 19
    flags[3] = "1"
    write(
        tmp_path / "u.item",
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{'|'.join(flags)}\n".encode("latin-1")
        + "2|Café (1996)|01-Jan-1996||http://x|".encode("latin-1")
        + "|".join(["0"] * 19).encode()
        + b"\n",
    )
    write(tmp_path / "u.data", "1\t1\t5\t881250949\n1\t2\t3\t881250950\n")
    dataset = load_movielens_100k_raw(tmp_path)
    assert dataset.catalog["1"].title == "Toy Story" and dataset.catalog["1"].year == 1995
    assert dataset.catalog["1"].genres == ("Animation",)
    assert dataset.catalog["2"].title == "Café"
    assert load_dataset(tmp_path).catalog.ids == ["1", "2"]


def test_movielens_latest_csv_layout(tmp_path):
    write(
        tmp_path / "movies.csv",
        'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
        "2,Heat (1995),(no genres listed)\n",
    )
    write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n")
    dataset = load_dataset(tmp_path)
    assert dataset.catalog["1"].title == "American President, The"
    assert dataset.catalog["2"].genres == ()
    assert dataset.interactions.ratings.tolist() == [4.0, 3.5]


def test_movielens_1m_dat_layout(tmp_path):
    write(tmp_path / "movies.dat", "1::Toy Story (1995)::Animation|Children's|Comedy\n".encode("latin-1"))
    write(tmp_path / "ratings.dat", "1::1::5::978300760\n2::1::3::978300761\n")
    dataset = load_dataset(tmp_path)
    assert dataset.catalog["1"].genres == ("Animation", "Children's", "Comedy")
    assert len(dataset.interactions) == 2


def test_generic_csv_and_jsonl_with_column_mapping(tmp_path):
    write(
        tmp_path / "items.jsonl",
        '{"sku": "a", "name": "Kettle", "cat": ["Kitchen"], "desc": "Boils water"}\n'
        '{"sku": "b", "name": "Mug", "cat": ["Kitchen", "Gifts"], "desc": "Holds tea"}\n',
    )
    write(tmp_path / "events.csv", "customer,sku,when\nc1,a,1\nc1,b,2\nc2,b,3\n")
    columns = ColumnMap(
        user="customer",
        item="sku",
        timestamp="when",
        rating=None,
        title="name",
        year=None,
        genres="cat",
        text=("desc",),
    )
    dataset = load_generic(tmp_path / "events.csv", tmp_path / "items.jsonl", columns)
    assert dataset.catalog["b"].genres == ("Kitchen", "Gifts")
    assert dataset.catalog["a"].text == "Boils water"
    assert dataset.interactions.ratings is None and len(dataset.interactions) == 3


# ------------------------------------------------------------------ bad input


def test_missing_column_names_file_line_and_field(tmp_path):
    write(tmp_path / "items.csv", "item_id,title\n1,A\n")
    write(tmp_path / "events.csv", "user_id,item_id\nu,1\n")
    with pytest.raises(DataError, match=r"events\.csv, line 1: missing column 'timestamp'"):
        load_generic(tmp_path / "events.csv", tmp_path / "items.csv")


def test_non_numeric_timestamp(atomic):
    write(atomic / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\t1\t5\tyesterday\n")
    with pytest.raises(DataError, match=r"toy\.inter, line 2: field 'timestamp' must be a number, got 'yesterday'"):
        load_recbole(atomic, "toy")


def test_non_numeric_rating(tmp_path):
    write(tmp_path / "items.csv", "item_id,title\n1,A\n")
    write(tmp_path / "events.csv", "user_id,item_id,timestamp,rating\nu,1,3,good\n")
    with pytest.raises(DataError, match=r"events\.csv, line 2: field 'rating' must be a number, got 'good'"):
        load_generic(tmp_path / "events.csv", tmp_path / "items.csv")


def test_empty_file(atomic):
    write(atomic / "toy.inter", "")
    with pytest.raises(DataError, match=r"toy\.inter: the file is empty"):
        load_recbole(atomic, "toy")


def test_undecodable_bytes_name_the_line(atomic):
    write(atomic / "toy.item", b"item_id:token\tmovie_title:token_seq\n1\tToy Story\n2\tCaf\xe9\n")
    with pytest.raises(DataError, match=r"toy\.item, line 3: undecodable bytes at column 6"):
        load_recbole(atomic, "toy")


def test_duplicate_item_ids(atomic):
    write(atomic / "toy.item", "item_id:token\tmovie_title:token_seq\n1\tToy Story\n1\tFargo\n")
    with pytest.raises(DataError, match=r"toy\.item: duplicate item id '1'"):
        load_recbole(atomic, "toy")


def test_header_without_types_and_missing_file(tmp_path, atomic):
    write(atomic / "toy.item", "item_id\tmovie_title\n1\tToy Story\n")
    with pytest.raises(DataError, match=r"toy\.item, line 1: header field 'item_id' lacks a ':type' suffix"):
        load_recbole(atomic, "toy")
    with pytest.raises(DataError, match=r"nothing\.item: file not found"):
        load_recbole(tmp_path, "nothing")


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="not a built-in dataset"):
        load_dataset("ml-7")


def test_bad_json_line(tmp_path):
    write(tmp_path / "items.jsonl", '{"item_id": "a", "title": "A"}\n{oops\n')
    write(tmp_path / "events.csv", "user_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(DataError, match=r"items\.jsonl, line 2: not valid JSON"):
        load_generic(tmp_path / "events.csv", tmp_path / "items.jsonl")


def test_catalog_lookup_and_fingerprint():
    catalog = Catalog([Item("1", "A", 1990, ("Drama",)), Item("2", "B")])
    assert catalog.row(2) == 1 and "1" in catalog and "3" not in catalog
    with pytest.raises(KeyError, match="item id '3' is not in the catalogue"):
        catalog.row("3")
    changed = Catalog([Item("1", "A", 1991, ("Drama",)), Item("2", "B")])
    assert catalog.fingerprint() != changed.fingerprint()
    assert catalog.years.tolist() == [1990, -1]


# ------------------------------------------------------------------ columnar loading at scale


def big_inter(path: Path, lines: int, bad: dict[int, str] | None = None) -> Path:
    """A RecBole .inter of ``lines`` events; ``bad`` replaces given (1-based file) lines."""
    rows = [f"u{n % 97}\t{n % 3 + 1}\t{n % 5 + 1}\t{n}" for n in range(lines)]
    for line, text in (bad or {}).items():
        rows[line - 2] = text
    return write(path, "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("u1\t1\t5\tyesterday", r"line 150001: field 'timestamp' must be a number, got 'yesterday'"),
        ("u1\t1\tnan\t3", r"line 150001: field 'rating' must be a number, got 'nan'"),
        ("u1\t1\t\t3", r"line 150001: field 'rating' must be a number, got ''"),
        ("u1\t1\t5", r"line 150001: expected 4 fields, found 3"),
        ("u1\t1\t5\t3\textra", r"line 150001: expected 4 fields, found 5"),
    ],
)
def test_one_bad_line_in_a_large_file_is_named(atomic, monkeypatch, text, message):
    from recommender.data import columnar

    monkeypatch.setattr(columnar, "LOCATE_BLOCK_BYTES", 1 << 16)  # many blocks: the line count must carry over
    big_inter(atomic / "toy.inter", 200_000, {150_001: text})
    with pytest.raises(DataError, match=r"toy\.inter, " + message):
        load_recbole(atomic, "toy")


def test_undecodable_bytes_in_interactions_name_line_and_column(atomic, monkeypatch):
    from recommender.data import columnar

    monkeypatch.setattr(columnar, "LOCATE_BLOCK_BYTES", 1 << 12)
    path = big_inter(atomic / "toy.inter", 5_000)
    raw = path.read_bytes().split(b"\n")
    raw[4000] = b"u\xe9\t1\t5\t7"  # line 4001
    write(path, b"\n".join(raw))
    with pytest.raises(DataError, match=r"toy\.inter, line 4001: undecodable bytes at column 2"):
        load_recbole(atomic, "toy")


def test_happy_path_reads_the_file_once_and_keeps_file_order(atomic, monkeypatch):
    from recommender.data import columnar

    calls = []
    real = columnar.pacsv.read_csv
    monkeypatch.setattr(columnar.pacsv, "read_csv", lambda *a, **k: calls.append(a) or real(*a, **k))
    big_inter(atomic / "toy.inter", 50_000)
    dataset = load_recbole(atomic, "toy")
    assert len(calls) == 1  # one parse; the line-by-line checks run only when something is wrong
    inter = dataset.interactions
    assert len(inter) == 50_000 and inter.n_users == 97 and inter.user_codes.dtype == np.int32
    assert inter.timestamps.tolist() == list(map(float, range(50_000)))  # file order kept
    assert inter.users[:3].tolist() == ["u0", "u1", "u2"] and inter.items[:3].tolist() == [0, 1, 2]
    assert inter.ratings[:6].tolist() == [1, 2, 3, 4, 5, 1]


def test_blank_lines_crlf_and_bom_are_accepted(atomic):
    write(
        atomic / "toy.inter",
        "\ufeffuser_id:token\titem_id:token\trating:float\ttimestamp:float\r\n\r\nu1\t1\t5\t10\r\n\nu1\t2\t4\t20\r\n",
    )
    dataset = load_recbole(atomic, "toy")
    assert dataset.interactions.items.tolist() == [0, 1] and dataset.interactions.users.tolist() == ["u1", "u1"]


def test_header_only_and_all_unknown_items(atomic):
    write(atomic / "toy.inter", "user_id:token\titem_id:token\ttimestamp:float\n")
    with pytest.raises(DataError, match=r"toy\.inter: the file has a header but no interactions"):
        load_recbole(atomic, "toy")
    write(atomic / "toy.inter", "user_id:token\titem_id:token\ttimestamp:float\nu\t77\t1\n")
    with pytest.raises(DataError, match=r"none of the 1 interactions refers to an item"):
        load_recbole(atomic, "toy")


def test_generic_csv_with_quotes_and_a_bad_line(tmp_path):
    write(tmp_path / "items.csv", 'item_id,title\n1,"Heat, the film"\n2,B\n')
    write(tmp_path / "events.csv", 'user_id,item_id,timestamp,rating\n"u,1",1,3,4\nu2,2,4,5\n')
    dataset = load_generic(tmp_path / "events.csv", tmp_path / "items.csv")
    assert dataset.interactions.users.tolist() == ["u,1", "u2"] and dataset.catalog["1"].title == "Heat, the film"
    write(tmp_path / "events.csv", 'user_id,item_id,timestamp,rating\n"u,1",1,3,4\nu2,2,4,5,6\n')
    with pytest.raises(DataError, match=r"events\.csv, line 3: expected 4 fields, found 5"):
        load_generic(tmp_path / "events.csv", tmp_path / "items.csv")
