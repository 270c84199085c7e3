import hashlib
from pathlib import Path

import numpy as np
import pytest

from recommender import load_dataset
from recommender.data import Catalog, Interactions, Item
from recommender.data.split import LeaveOneOutSplit


def make_interactions(rows):
    users, items, times = zip(*rows)
    return Interactions(np.array(users, dtype=object), np.array(items), np.array(times, dtype=float))


def test_leave_one_out_with_ties_keeps_file_order():
    # u1's last two events share a timestamp: file order decides (item 3 valid, item 4 test).
    split = LeaveOneOutSplit(make_interactions([("u1", 2, 5), ("u1", 1, 1), ("u1", 3, 9), ("u1", 4, 9),
                                                ("u2", 0, 1), ("u2", 1, 2)]))  # fmt: skip
    assert split.sequences["u1"].tolist() == [1, 2, 3, 4]
    assert split.train("u1").tolist() == [1, 2]
    valid, test = split.case("u1", "valid"), split.case("u1", "test")
    assert (valid.history.tolist(), valid.target) == ([1, 2], 3)
    assert (test.history.tolist(), test.target) == ([1, 2, 3], 4)
    # users with fewer than 3 events train on everything and are not evaluated
    assert split.eval_users == ["u1"] and split.train("u2").tolist() == [0, 1]


def test_popularity_counts_train_events_only():
    split = LeaveOneOutSplit(make_interactions([("u1", 0, 1), ("u1", 1, 2), ("u1", 2, 3)]))
    assert split.item_popularity(3).tolist() == [1.0, 0.0, 0.0]


def test_ml100k_split_sizes_and_determinism():
    dataset = load_dataset("ml-100k")
    first, second = LeaveOneOutSplit(dataset.interactions), LeaveOneOutSplit(dataset.interactions)
    assert len(first.cases("valid")) == 943 and len(first.cases("test")) == 943
    assert [c.target for c in first.cases("test")] == [c.target for c in second.cases("test")]
    case = first.case("1", "test")
    assert len(case.history) + 1 == len(first.sequences["1"]) == 272
    assert case.target not in set(case.history.tolist())  # ML-100k has no repeat events


def test_split_of_string_user_ids_orders_naturally():
    catalog = Catalog([Item(str(i), f"t{i}") for i in range(3)])
    assert len(catalog) == 3
    split = LeaveOneOutSplit(make_interactions([("10", 0, 1), ("9", 0, 1), ("b", 1, 1)]))
    assert split.users == ["9", "10", "b"]


# ------------------------------------------------------------------ identity with the former per-user loop

ML100K_TARGETS = Path(__file__).parent / "data" / "ml100k_loo_targets.tsv"
# sha256 over (user id, int64 sequence) of every user, from the per-user implementation before
# the split was vectorised (2026-12, commit 3d79146).
ML100K_SEQUENCES_DIGEST = "e361725f3e52b0b8"


def reference_split(users, items, timestamps):
    """The former implementation: stable sort by (user string, timestamp), then a loop per user."""
    users = np.asarray(users, dtype=object)
    order = np.lexsort((timestamps, users.astype(str)))
    users, items = users[order], np.asarray(items)[order]
    boundaries = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts, ends = np.concatenate([[0], boundaries]), np.concatenate([boundaries, [len(users)]])
    return {str(users[s]): items[s:e] for s, e in zip(starts, ends)}


def test_ml100k_split_identical_to_the_former_implementation():
    dataset = load_dataset("ml-100k")
    split = LeaveOneOutSplit(dataset.interactions)
    ids = dataset.catalog.ids
    lines = ML100K_TARGETS.read_text().split("\n")[1:-1]
    expected = [tuple(line.split("\t")) for line in lines]
    found = [(u, ids[split.case(u, "valid").target], ids[split.case(u, "test").target]) for u in split.users]
    assert found == expected  # same users in the same order, same validation and test items
    digest = hashlib.sha256()
    for user in split.users:
        digest.update(user.encode())
        digest.update(split.sequences[user].astype(np.int64).tobytes())
    assert digest.hexdigest()[:16] == ML100K_SEQUENCES_DIGEST
    assert dataset.fingerprint() == "0556e659eac28b2c-f1b9e4aa519d815a"  # cache keys and adapter metadata hold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_split_matches_a_per_user_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.choice(["7", "10", "x", "b", "007", "200", "9"] + [str(u) for u in range(60)], n)
    items = rng.integers(0, 50, n)
    timestamps = rng.integers(0, 20, n).astype(float)  # many ties: file order decides
    split = LeaveOneOutSplit(Interactions(users, items, timestamps, rng.random(n).astype(np.float32)))
    reference = reference_split(users, items, timestamps)
    assert split.users == sorted(reference, key=lambda u: (0, int(u)) if u.isdigit() else (1, u))  # former order
    for user, sequence in reference.items():
        assert split.sequences[user].tolist() == sequence.tolist()
        assert split.train(user).tolist() == (sequence[:-2] if len(sequence) >= 3 else sequence).tolist()
    train = split.train_sequences()
    indptr, rows = split.train_csr()
    for code, user in enumerate(split.users):
        assert train[user].tolist() == rows[indptr[code] : indptr[code + 1]].tolist() == split.train(user).tolist()
    counts = np.zeros(50)
    for user in split.users:
        np.add.at(counts, split.train(user), 1.0)
    assert split.item_popularity(50).tolist() == counts.tolist()
    assert split.eval_users == [u for u in split.users if len(reference[u]) >= 3]


def test_natural_user_order_and_codes():
    interactions = Interactions(np.array(["10", "9", "b", "01", "1", "a"]), np.zeros(6, int), np.zeros(6))
    assert interactions.user_ids.tolist() == ["01", "1", "9", "10", "a", "b"]
    assert interactions.users.tolist() == ["10", "9", "b", "01", "1", "a"]
    assert interactions.user_codes.dtype == np.int32
    # codes plus a vocabulary: unused ids are dropped, the rest ordered naturally
    coded = Interactions(np.array([2, 0, 2]), np.zeros(3, int), np.zeros(3), user_ids=["z", "unused", "3"])
    assert coded.user_ids.tolist() == ["3", "z"] and coded.users.tolist() == ["3", "z", "3"]


def test_overridden_sequence_is_read_everywhere():
    split = LeaveOneOutSplit(make_interactions([("u", 0, 1), ("u", 1, 2), ("u", 2, 3), ("u", 3, 4)]))
    split.sequences["u"] = split.sequences["u"][[0, 1, 3, 2]]
    assert split.case("u", "test").target == 2 and split.train("u").tolist() == [0, 1]
    assert split.train_sequences()["u"].tolist() == [0, 1] and split.train_csr()[1].tolist() == [0, 1]
    assert "u" in split.sequences and "v" not in split.sequences and dict(split.sequences).keys() == {"u"}
