"""What a person who mistypes meets on the command line: one sentence, a non-zero exit, no model load."""

from __future__ import annotations

import logging

import pytest

from recommender.cli import main
from recommender.finetune.config import ConfigError, load_config


@pytest.fixture
def no_model(monkeypatch):
    """Any model load fails the test: ids must be checked before the slow part."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr("recommender.llm.loading.load_model", refuse)
    monkeypatch.setattr("recommender.pipeline.Recommender.from_pretrained", refuse)


def one_sentence(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_a_file_that_is_not_a_store_ends_in_one_sentence(tmp_path, capsys):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello\n" * 50)
    assert main(["feedback", "stats", "--db", str(not_a_db)]) == 2
    assert "cannot open the feedback store" in one_sentence(capsys)


def test_a_missing_store_is_named(tmp_path, capsys):
    assert main(["feedback", "export", "--db", str(tmp_path / "nope.sqlite"), "-o", str(tmp_path / "f.jsonl")]) == 2
    assert "nope.sqlite" in one_sentence(capsys)


def test_an_unknown_user_is_told_before_any_model_loads(no_model, capsys):
    assert main(["recommend", "--user", "999999"]) == 2
    assert "user id '999999' is not in ml-100k (943 users, ids 1 to 943)" in one_sentence(capsys)


@pytest.mark.parametrize("argv", [["--user", "1", "--item", "999999"], ["--user", "1", "--item", "Not A Film (2042)"]])
def test_an_unknown_item_is_told_before_any_model_loads(no_model, capsys, argv):
    assert main(["explain", *argv]) == 2
    assert "matches no item id or exact title" in one_sentence(capsys)


def test_an_unknown_user_in_explain_is_told_before_any_model_loads(no_model, capsys):
    assert main(["explain", "--user", "0", "--item", "50"]) == 2
    assert "user id '0' is not in ml-100k" in one_sentence(capsys)


def test_a_key_error_reads_as_its_message_without_quotes(tmp_path, monkeypatch, capsys):
    from recommender.store import FeedbackStore

    db = tmp_path / "feedback.sqlite"
    FeedbackStore(db)

    def lookup(self):
        raise KeyError("session 'abc' is not in the store")

    monkeypatch.setattr(FeedbackStore, "counts", lookup)
    assert main(["feedback", "stats", "--db", str(db)]) == 2
    assert one_sentence(capsys) == "error: session 'abc' is not in the store"


def test_a_config_type_error_says_what_to_type(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("train:\n  max_steps: many\n")
    with pytest.raises(ConfigError, match=r"'train\.max_steps' must be a whole number, got 'many'"):
        load_config(recipe)


def test_the_optional_kernel_notice_of_bitsandbytes_is_dropped_and_nothing_else(caplog):
    from recommender.quiet import quiet_third_party

    quiet_third_party()
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING, logger="bitsandbytes.backends.cpu.ops"):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "No module named 'kernels'")
        logger.warning("something a user should see")
    assert [r.getMessage() for r in caplog.records] == ["something a user should see"]
