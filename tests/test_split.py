import numpy as np

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
