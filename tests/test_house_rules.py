"""The house rules of tools/check_house.py hold on the tree (so CI, not only `make lint`, sees a breach)."""

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_checker():
    spec = importlib.util.spec_from_file_location("check_house", ROOT / "tools" / "check_house.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imports_inside_functions_and_relative_imports_count():
    checker = load_checker()
    tree = ast.parse("def f():\n    from recommender.pipeline import Recommender\nfrom .text import fold\n")
    found = checker.imported_modules(tree, "recommender.chat.turn", is_package=False)
    assert "recommender.pipeline" in found
    assert "recommender.chat.text" in found


def test_an_upward_import_and_a_cycle_are_reported():
    checker = load_checker()
    graph = {"recommender.data.catalog": {"recommender.pipeline"}, "recommender.pipeline": {"recommender.data.catalog"}}
    assert any("lower layer" in line for line in checker.layer_breaches(graph))
    assert checker.cycles(graph) == [["recommender.data.catalog", "recommender.pipeline"]]


def test_the_tree_keeps_the_house_rules(capsys):
    checker = load_checker()
    status = checker.main()
    assert status == 0, capsys.readouterr().out
