"""Fine-tuning: SFT set without leakage, label balance, LoRA steps on a tiny Llama, resume, bad input."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_llama

from recommender.data import Catalog, Interactions, Item
from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.finetune.config import ConfigError, DataConfig, FinetuneConfig, load_config
from recommender.finetune.examples import build_examples, served_examples
from recommender.finetune.train import Encoded, claim_output, run_identity
from recommender.llm.evidence import CowatchEvidence, PrefixScorer, recent_strength
from recommender.llm.ranking_prompts import RankingRequest, ranking_prompt
from recommender.retrieval.base import CooccurrenceRetriever, HybridRetriever, PopularityRetriever

GENRES = ("Comedy", "Drama", "Horror", "Action")


@pytest.fixture(scope="module")
def world():
    """40 items, 15 users with 12-25 distinct items each, a pop + co-occurrence hybrid."""
    rng = np.random.default_rng(0)
    catalog = Catalog([Item(str(i), f"Film {i}", 1990 + i % 10, (GENRES[i % 4],)) for i in range(40)])
    users, items, times, ratings = [], [], [], []
    for u in range(15):
        seq = rng.choice(40, int(rng.integers(12, 26)), replace=False)
        for t, item in enumerate(seq):
            users.append(str(u))
            items.append(int(item))
            times.append(float(t))
            ratings.append(float(rng.integers(1, 6)))
    interactions = Interactions(
        np.array(users, dtype=object), np.array(items), np.array(times), np.array(ratings, dtype=np.float32)
    )
    split = LeaveOneOutSplit(interactions)
    components = {
        "pop": PopularityRetriever(catalog, split.item_popularity(40)),
        "cooccurrence": CooccurrenceRetriever(catalog, split.train_sequences()),
    }
    hybrid = HybridRetriever(catalog, components, {"pop": 0.3, "cooccurrence": 0.7})
    return catalog, split, hybrid, PrefixScorer(hybrid, split.train_sequences())


def test_prefix_scorer_matches_the_serving_retriever(world):
    catalog, split, hybrid, scorer = world
    for user in split.eval_users[:5]:
        history = split.case(user, "valid").history  # = the whole train sequence
        scores, sims = scorer.scores(history)
        np.testing.assert_allclose(scores, hybrid.score_rows(history), atol=1e-9)
        np.testing.assert_array_equal(scorer.similarities(history), sims)
        # The serving evidence (sparse co-occurrence rows) gives the training prefixes' digits.
        served = CowatchEvidence.for_retriever(hybrid, split).recent(history, np.array([0, 1, 2]))
        np.testing.assert_array_equal(served, recent_strength(sims, np.array([0, 1, 2])))
        request = RankingRequest([catalog.items[h] for h in history], catalog.items[:3], {"recent": served})
        prompt = ranking_prompt("rank_evidence").render(request)
        assert prompt.template == "rank_evidence" and "(recent " in prompt.messages[1]["content"]


def test_recent_digit_scales_last_three_cowatch_sums_within_the_list():
    sims = np.array(
        [
            [9.0, 9.0, 9.0, 9.0],  # older than the last three: ignored
            [0.1, 0.0, 0.5, 0.2],
            [0.1, 0.0, 0.0, 0.2],
            [0.0, 0.0, 0.1, 0.2],
        ]
    )
    # sums over the last three rows: 0.2, 0.0, 0.6, 0.6 -> min-max to 0..9
    assert recent_strength(sims, np.array([0, 1, 2, 3])).tolist() == [3, 0, 9, 9]
    assert recent_strength(sims, np.array([2, 3])).tolist() == [0, 0]  # no spread: all 0
    assert recent_strength(np.zeros((0, 4)), np.array([1, 2])).tolist() == [0, 0]  # empty history


@pytest.mark.parametrize("order", ["retriever", "shuffle"])
def test_no_validation_or_test_event_in_the_training_set(world, order):
    catalog, split, _, scorer = world
    cfg = DataConfig(
        prefixes_per_user=0,
        min_history=2,
        n_candidates=6,
        random_negatives=1,
        candidate_order=order,
        missing_target="random_slot",
        task_mix={"rank": 0.5, "rating": 0.25, "explain": 0.25},
    )
    examples = build_examples(catalog, split, scorer, cfg, seed=0)
    assert {e.task for e in examples} == {"rank", "rating", "explain"}
    for example in examples:
        train = list(split.train(example.user))
        held_out = {split.case(example.user, s).target for s in ("valid", "test")}
        assert example.target not in held_out and example.target in train
        assert not held_out & set(example.history)
        assert list(example.history) == train[: len(example.history)]  # a prefix, target right after
        assert train[len(example.history)] == example.target
        text = " ".join(m["content"] for m in example.messages)
        for item in held_out:  # the held-out titles never reach a prompt as history
            assert f"- {catalog.items[item].display_title()}\n" not in text.split("Candidates")[0]


def test_target_letters_spread_evenly_when_shuffled(world):
    catalog, split, _, scorer = world
    cfg = DataConfig(
        prefixes_per_user=0,
        min_history=2,
        n_candidates=5,
        candidate_order="shuffle",
        missing_target="random_slot",
        max_examples=0,
    )
    examples = [e for seed in range(4) for e in build_examples(catalog, split, scorer, cfg, seed=seed)]
    counts = Counter(e.completion for e in examples)
    assert set(counts) == set("ABCDE")
    expected = len(examples) / 5
    # Chi-square with 4 degrees of freedom; 18.5 is the 0.1% critical value.
    assert sum((c - expected) ** 2 / expected for c in counts.values()) < 18.5


def _shown_and_lines(example):
    """The prompt's 'Recent:' titles and its candidate lines (label, title, evidence digit)."""
    text = example.messages[-1]["content"]
    recent, *lines = text.splitlines()
    return recent.removeprefix("Recent: ").split("; "), lines


@pytest.mark.parametrize("path", ["prefixes", "served"])
def test_shuffled_shown_titles_keep_the_items_evidence_and_target(world, path):
    catalog, split, hybrid, scorer = world
    if path == "prefixes":
        cfg = DataConfig(prefixes_per_user=0, min_history=6, n_candidates=6, max_history=4, max_examples=0)
        plain = build_examples(catalog, split, scorer, cfg, seed=3)
        shuffled = build_examples(catalog, split, scorer, replace(cfg, shuffle_shown=1.0), seed=3)
    else:
        prompt, evidence = ranking_prompt("rank_evidence", 4), CowatchEvidence.for_retriever(hybrid, split)
        cases = [EvalCase(u, split.train(u), int(split.train(u)[-1])) for u in split.users]
        cases = [EvalCase(c.user, c.history[:-1], c.target) for c in cases]
        plain = served_examples(catalog, cases, hybrid, evidence, prompt, 6)
        shuffled = served_examples(catalog, cases, hybrid, evidence, prompt, 6, shuffle_shown=1.0, seed=3)
    assert len(plain) == len(shuffled) > 10
    reordered = 0
    for a, b in zip(plain, shuffled):
        assert (a.user, a.target, a.completion) == (b.user, b.target, b.completion)
        (shown_a, lines_a), (shown_b, lines_b) = _shown_and_lines(a), _shown_and_lines(b)
        assert sorted(shown_a) == sorted(shown_b) and lines_a == lines_b  # same titles, same digits
        assert a.history[: len(a.history) - 4] == b.history[: len(b.history) - 4]  # unshown part untouched
        reordered += shown_a != shown_b
    assert reordered > len(plain) / 2  # 4 titles: 23 of 24 orders differ from the true one
    assert build_examples(catalog, split, scorer, replace(DataConfig(), shuffle_shown=0.0)) == build_examples(
        catalog, split, scorer, DataConfig()
    )


def test_shuffle_share_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigError, match="data.shuffle_shown"):
        DataConfig(shuffle_shown=1.5)


# ------------------------------------------------------------------------------------- tiny Llama


@pytest.fixture
def tiny_model():
    return tiny_llama(vocab_size=64)


def tiny_examples(n: int = 24) -> list[Encoded]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        ids = [int(x) for x in rng.integers(5, 64, int(rng.integers(6, 12)))]
        if i % 3:
            out.append(Encoded(ids + [1 + i % 4], 1, (1, 2, 3, 4), i % 4))  # a one-token "letter"
        else:
            out.append(Encoded(ids + [7, 8, 0], 3))  # free text
    return out


def tiny_config(tmp_path, **train) -> FinetuneConfig:
    overrides = [
        f"output_dir={tmp_path}",
        "lora.r=4",
        "lora.dropout=0.0",
        "eval.every=0",
        "warmup_steps=1",
        "train.batch_size=4",
        "lr=0.01",
        "checkpoint_every=1",
    ]
    return load_config(None, overrides + [f"{k}={v}" for k, v in train.items()])


def test_two_lora_steps_change_the_adapter_and_not_the_base(tiny_model, tmp_path):
    import torch

    from recommender.finetune.train import add_lora, train_loop

    config = tiny_config(tmp_path, max_steps=2)
    model = add_lora(tiny_model, config, quantized=False)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    state = train_loop(model, tiny_examples(), config, tmp_path, pad_id=0, log=lambda _: None)
    assert state.step == 2 and all(np.isfinite(loss) for _, loss in state.losses)
    after = dict(model.named_parameters())
    lora = [n for n in before if "lora_" in n]
    assert lora and any(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)
    assert all(torch.equal(before[n], after[n]) for n in before if "lora_" not in n)


def test_line_scored_loss_is_cross_entropy_over_the_line_scores_and_trains(tiny_model, tmp_path):
    import torch

    from recommender.finetune.train import add_lora, batch_loss, train_loop

    rng = np.random.default_rng(1)
    answers = torch.tensor([5, 6])  # the "Yes" and "No" ids of this 64-token vocabulary
    lined = [
        Encoded([int(x) for x in rng.integers(7, 64, 9 + i % 3)], 0, target=i % 3, readouts=(2, 5, 8)) for i in range(8)
    ]
    config = tiny_config(tmp_path, max_steps=2)
    model = add_lora(tiny_model, config, quantized=False)
    with torch.no_grad():
        loss = batch_loss(model, lined[:2], 0, answer_ids=answers)
        expected = []
        for example in lined[:2]:
            logits = model(input_ids=torch.tensor([example.ids])).logits[0]  # [T, V]
            margins = logits[list(example.readouts), 5] - logits[list(example.readouts), 6]  # [3]
            expected.append(torch.nn.functional.cross_entropy(margins[None], torch.tensor([example.target])))
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), abs=1e-5)
    with pytest.raises(ValueError, match="answer_ids"):
        batch_loss(model, lined[:2], 0)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    state = train_loop(model, lined + tiny_examples(), config, tmp_path, 0, log=lambda _: None, answer_ids=answers)
    assert state.step == 2 and all(np.isfinite(loss) for _, loss in state.losses)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)


def test_resume_continues_from_the_checkpoint_step(tiny_model, tmp_path):
    import copy

    import torch

    from recommender.finetune.train import add_lora, latest_checkpoint, train_loop

    fresh = copy.deepcopy(tiny_model)
    first = train_loop(
        add_lora(tiny_model, tiny_config(tmp_path, max_steps=2), False),
        tiny_examples(),
        tiny_config(tmp_path, max_steps=2),
        tmp_path,
        0,
        log=lambda _: None,
    )
    assert latest_checkpoint(tmp_path).name == "step-000002" and first.step == 2
    messages = []
    model = add_lora(fresh, tiny_config(tmp_path, max_steps=4), False)
    resumed = train_loop(
        model, tiny_examples(), tiny_config(tmp_path, max_steps=4), tmp_path, 0, resume=True, log=messages.append
    )
    assert messages[0].endswith("at step 2")
    assert [step for step, _ in resumed.losses] == [1, 2, 3, 4]
    assert resumed.losses[:2] == first.losses
    # The same 4 steps without interruption give the same adapter.
    torch.manual_seed(0)
    straight = train_loop(
        add_lora(copy.deepcopy(fresh_base(tiny_model)), tiny_config(tmp_path / "b", max_steps=4), False),
        tiny_examples(),
        tiny_config(tmp_path / "b", max_steps=4),
        tmp_path / "b",
        0,
        log=lambda _: None,
    )
    # (the optimizer state round trip leaves float noise in the last step)
    np.testing.assert_allclose([x for _, x in straight.losses], [x for _, x in resumed.losses], rtol=1e-2)


@pytest.mark.parametrize("retune", [False, True])
def test_a_retune_keeps_its_starting_adapter_unless_a_step_beats_it(tiny_model, tmp_path, retune):
    from recommender.finetune.train import add_lora, train_loop

    extra = {"eval.every": 1, "patience": 5} | ({"init_adapter": "earlier-run"} if retune else {})
    config = tiny_config(tmp_path, max_steps=2, **extra)
    scores, kept = iter([0.30, 0.20, 0.25]), []  # validation at steps 0, 1, 2
    state = train_loop(
        add_lora(tiny_model, config, False), tiny_examples(), config, tmp_path, 0, log=lambda _: None,
        evaluate=lambda _: {"blend_NDCG@10": next(scores)}, save_best=lambda _, m: kept.append(m["step"]),
    )  # fmt: skip
    assert kept == ([0] if retune else [1, 2]) and state.best["step"] == kept[-1]


def test_trainer_state_keeps_the_best_and_counts_patience():
    from recommender.finetune.loop import TrainerState

    state = TrainerState()
    assert state.add_eval({"step": 0, "m": 0.5}, "m", 2, candidate=False) == (False, False) and state.best is None
    assert state.add_eval({"step": 1, "m": 0.2}, "m", 2) == (True, False)
    assert state.add_eval({"step": 2, "m": 0.2}, "m", 2) == (False, False)  # not better by more than 1e-9
    assert state.add_eval({"step": 3, "m": 0.1}, "m", 2) == (False, True)
    assert state.best["step"] == 1 and state.bad_evals == 2 and len(state.evals) == 4
    saved = json.loads(json.dumps(state.to_dict()))  # trainer_state.json of a checkpoint
    assert TrainerState.from_dict(saved) == state
    del saved["lrs"]  # checkpoints written before the schedule was recorded
    assert TrainerState.from_dict(saved).lrs == []


def fresh_base(_):
    return tiny_llama(vocab_size=64)


def test_a_retune_starts_from_the_saved_adapter_and_refuses_another_shape(tiny_model, tmp_path):
    import copy

    import torch
    from accelerate import Accelerator

    from recommender.finetune.train import add_lora, save_adapter, start_from_adapter, train_loop
    from recommender.llm.loading import write_adapter_metadata
    from recommender.llm.ranking_prompts import ranking_prompt

    fresh = copy.deepcopy(tiny_model)
    prompt = ranking_prompt("rank_evidence", 3)
    config = tiny_config(tmp_path / "first", max_steps=2)
    trained = add_lora(tiny_model, config, False)
    train_loop(trained, tiny_examples(), config, tmp_path / "first", 0, log=lambda _: None)
    save_adapter(Accelerator(cpu=True), trained, tmp_path / "first")
    write_adapter_metadata(tmp_path / "first", "tiny", {}, max_history=3, rerank_candidates=10, template=prompt.name)
    retune = tiny_config(tmp_path / "again", **{"train.init_adapter": str(tmp_path / "first"), "max_history": 3})
    model = add_lora(copy.deepcopy(fresh), retune, False)
    assert start_from_adapter(model, retune, prompt) == tmp_path / "first"
    weights = dict(trained.named_parameters())
    lora = [n for n, _ in model.named_parameters() if "lora_B" in n]
    assert lora and all(torch.equal(p, weights[n]) for n, p in model.named_parameters() if n in lora)
    other = tiny_config(tmp_path / "r8", **{"init_adapter": str(tmp_path / "first"), "lora.r": 8, "max_history": 3})
    with pytest.raises(ConfigError, match=r"trained with lora\.r = 4 but this recipe has 8"):
        start_from_adapter(add_lora(copy.deepcopy(fresh), other, False), other, prompt)
    with pytest.raises(ConfigError, match="data.candidate_order"):
        start_from_adapter(add_lora(copy.deepcopy(fresh), retune, False), retune, ranking_prompt("rank", 3))


# ------------------------------------------------------------------------------------- bad input


def test_unknown_config_key_is_one_sentence_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'lora\.rank'"):
        load_config(None, ["lora.rank=8"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  learning_rate: 0.1  # typo\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.learning_rate'") as error:
        load_config(recipe)
    assert "\n" not in str(error.value)


def test_cli_reports_an_unknown_key_without_a_traceback(capsys):
    from recommender.cli import main

    assert main(["finetune", "--set", "lora.rank=8"]) == 2
    assert "unknown config key 'lora.rank'" in capsys.readouterr().err


def test_4bit_without_bitsandbytes_fails_before_loading(monkeypatch, tmp_path):
    import sys

    from recommender.finetune.train import main

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` now raises ImportError
    config = load_config(None, [f"output_dir={tmp_path}", "quantize=4bit"])
    with pytest.raises(ConfigError, match="bitsandbytes is not installed"):
        main(config)


def test_output_folder_of_another_run_is_refused_unless_overwrite(tmp_path):
    folder = tmp_path / "run"
    first = run_identity(load_config(None, ["lora.r=8"]), "data-a")
    claim_output(folder, first, overwrite=False, resume=False)
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    claim_output(folder, run_identity(load_config(None, ["lora.r=8", "max_steps=999"]), "data-a"), False, True)
    other = run_identity(load_config(None, ["lora.r=4"]), "data-a")
    with pytest.raises(ConfigError, match="holds a different run"):
        claim_output(folder, other, overwrite=False, resume=False)
    with pytest.raises(ConfigError, match="holds a different run"):
        claim_output(folder, run_identity(load_config(None, ["lora.r=8"]), "data-b"), False, False)
    claim_output(folder, other, overwrite=True, resume=False)
    assert json.loads((folder / "run.json").read_text()) == other
    assert not (folder / "adapter_model.safetensors").exists()


@pytest.mark.parametrize(
    "recipe", sorted(p.name for p in (Path(__file__).parents[1] / "finetune" / "configs").glob("*.yaml"))
)
def test_every_shipped_recipe_loads(recipe):
    config = load_config(Path(__file__).parents[1] / "finetune" / "configs" / recipe)
    assert config.output_dir.startswith("runs/")


def test_the_feedback_recipe_fits_the_shipped_adapter_it_starts_from():
    # start_from_adapter refuses a LoRA of another shape; this keeps the recipe in step with the shipped adapter.
    root = Path(__file__).parents[1]
    config = load_config(root / "finetune" / "configs" / "ml100k_feedback_cpu.yaml")
    from recommender.pretrained import shipped_adapter

    assert shipped_adapter() is not None
    shape = json.loads((shipped_adapter() / "adapter_config.json").read_text())
    smollm2_layers = 30
    assert config.train.init_adapter == "default"
    assert (shape["r"], shape["lora_alpha"]) == (config.lora.r, config.lora.alpha)
    assert sorted(shape["target_modules"]) == sorted(config.lora.target_modules)
    assert shape["layers_to_transform"] == list(range(smollm2_layers - config.lora.top_layers, smollm2_layers))
    meta = json.loads((shipped_adapter() / "recommender_adapter.json").read_text())
    assert meta["max_history"] == config.data.max_history  # the prompt it was trained on, or it is re-taught
