"""Model loading and scoring on a TINY randomly initialised Llama with the real SmolLM2 tokenizer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from recommender.data import Item  # noqa: E402
from recommender.llm.loading import (  # noqa: E402
    ModelLoadError,
    load_model,
    read_adapter_metadata,
    write_adapter_metadata,
)
from recommender.llm.prompting import LABELS, render_rank  # noqa: E402
from recommender.llm.ranking_prompts import (  # noqa: E402
    RankingRequest,
    ranking_prompt,
    request_seed,
    score_requests,
    shuffled_orders,
)
from recommender.llm.scoring import LLMScorer  # noqa: E402
from recommender.prompts import TEMPLATE_VERSIONS  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tiny_llama_dir) -> Path:
    return tiny_llama_dir


@pytest.fixture(scope="module")
def scorer(tiny_dir) -> LLMScorer:
    return LLMScorer(load_model(tiny_dir, device="cpu"), batch_size=8, suffix_batch_size=8)


def items(n: int, prefix: str) -> list[Item]:
    genres = ("Drama", "Comedy", "Horror", "Sci-Fi")
    return [Item(f"{prefix}{i}", f"Film {prefix} number {i}", 1980 + i, (genres[i % 4],)) for i in range(n)]


def test_loaded_model_describes_itself(scorer):
    loaded = scorer.loaded
    assert loaded.base_name == "tiny-llama" and loaded.device == "cpu" and loaded.dtype == "float32"
    assert loaded.template_versions == TEMPLATE_VERSIONS and loaded.adapter_path is None
    assert "tiny-llama on cpu" in loaded.describe()


def test_label_ids_are_single_tokens_from_the_tokenizer(scorer):
    tokenizer = scorer.tokenizer
    assert scorer.label_ids.tolist() == tokenizer.convert_tokens_to_ids(list(LABELS))
    assert len(set(scorer.label_ids.tolist())) == len(LABELS)
    assert scorer.yes_no_ids.tolist() == tokenizer.convert_tokens_to_ids(["Yes", "No"])
    with pytest.raises(ValueError, match="not a single token"):
        scorer.answer_token_ids(["Absolutely"])


def rank(scorer, history, candidates, permutations=1, seed=0) -> np.ndarray:
    prompt = ranking_prompt("rank")
    return score_requests(scorer, prompt, [RankingRequest(history, candidates)], permutations, seed)[0]


def test_rank_scores_are_log_probabilities_in_candidate_order(scorer):
    candidates = items(20, "c")
    scores = rank(scorer, items(5, "h"), candidates)
    assert scores.shape == (20,) and np.isfinite(scores).all()
    assert np.exp(scores).sum() == pytest.approx(1.0)
    raw = scorer.score_labels([render_rank(items(5, "h"), candidates).messages], [20])[0]
    assert np.allclose(torch.log_softmax(torch.tensor(raw), -1).numpy(), scores, atol=1e-6)


@pytest.mark.parametrize("permutations", [1, 3])
def test_user_scores_do_not_depend_on_the_batch(scorer, permutations):
    # Different history lengths give different padding in the batch of 8; with shuffles, each
    # request's orders come from its own content, not from its place in the batch.
    requests = [RankingRequest(items(1 + 3 * u, f"h{u}-"), items(4 + 2 * u, f"c{u}-")) for u in range(8)]
    together = score_requests(scorer, ranking_prompt("rank"), requests, permutations, seed=5)
    for request, batched in zip(requests[::-1], together[::-1]):
        alone = rank(scorer, request.history, request.candidates, permutations, seed=5)
        np.testing.assert_allclose(batched, alone, atol=1e-4)


def evidence_messages(n_history: int, n_candidates: int, seed: int) -> list[dict[str, str]]:
    digits = np.random.default_rng(seed).integers(0, 10, n_candidates)
    request = RankingRequest(items(n_history, "m"), items(n_candidates, "c"), {"recent": digits})
    return ranking_prompt("rank_evidence", 3).render(request).messages


def test_line_scores_are_yes_minus_no_at_each_lines_last_token(scorer):
    from recommender.llm.scoring import line_readouts

    messages = evidence_messages(4, 6, seed=0)
    ids, readouts = line_readouts(scorer.tokenizer, messages, 6)
    assert len(readouts) == 6 and readouts == sorted(readouts)
    assert all(scorer.tokenizer.decode([ids[r]]).endswith(")") for r in readouts)
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([ids])).logits[0]  # [T, V] every position
    expected = (logits[readouts][:, scorer.yes_no_ids[0]] - logits[readouts][:, scorer.yes_no_ids[1]]).numpy()
    np.testing.assert_allclose(scorer.score_lines([messages], [6])[0], expected, atol=1e-4)


def test_line_scores_do_not_depend_on_the_batch(scorer):
    conversations = [evidence_messages(1 + u, 3 + 2 * u, seed=u) for u in range(5)]
    counts = [3 + 2 * u for u in range(5)]
    together = scorer.score_lines(conversations, counts)
    for messages, n, batched in zip(conversations, counts, together):
        assert batched.shape == (n,)
        np.testing.assert_allclose(batched, scorer.score_lines([messages], [n])[0], atol=1e-4)


def test_reading_no_lines_gives_an_empty_score_vector(scorer):
    empty, full = scorer.score_lines([evidence_messages(2, 3, seed=0), evidence_messages(2, 4, seed=1)], [0, 4])
    assert empty.shape == (0,) and full.shape == (4,)


def test_permutation_averaging_keeps_candidate_order(scorer):
    candidates = items(6, "c")
    once = rank(scorer, items(3, "h"), candidates, permutations=1)
    averaged = rank(scorer, items(3, "h"), candidates, permutations=4, seed=7)
    assert averaged.shape == (6,) and np.isfinite(averaged).all()
    assert not np.allclose(once, averaged)
    np.testing.assert_allclose(averaged, rank(scorer, items(3, "h"), candidates, permutations=4, seed=7))
    # Averaging by hand over the same orders, each read in its own prompt, gives the same numbers.
    by_hand = np.zeros(6)
    for order in shuffled_orders(6, 4, request_seed(RankingRequest(items(3, "h"), candidates), 7)):
        by_hand[order] += rank(scorer, items(3, "h"), [candidates[i] for i in order])
    np.testing.assert_allclose(averaged, by_hand / 4, atol=1e-5)


def test_pointwise_with_cached_prefix_equals_naive(scorer):
    history, candidates = items(8, "h"), items(11, "c")  # 11 > batch 8: two suffix batches
    cached = scorer.pointwise(history, candidates, cache_prefix=True)
    naive = scorer.pointwise(history, candidates, cache_prefix=False)
    assert ((cached.scores > 0) & (cached.scores < 1)).all()
    np.testing.assert_allclose(cached.scores, naive.scores, atol=1e-4)
    assert cached.template_version == TEMPLATE_VERSIONS["pointwise"]
    single = scorer.pointwise([], candidates[:1])
    assert single.scores.shape == (1,)


def test_rating_is_an_expected_value_between_1_and_5(scorer):
    history = [(item, float(1 + i % 5)) for i, item in enumerate(items(6, "h"))]
    result = scorer.rate(history, items(3, "c"))
    assert result.scores.shape == (3,) and ((result.scores >= 1) & (result.scores <= 5)).all()


def test_generate_and_stream_agree(scorer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    text = scorer.generate(messages, max_new_tokens=6)
    assert isinstance(text, str)
    assert "".join(scorer.stream(messages, max_new_tokens=6)).strip() == text


def test_closing_a_stream_stops_its_generation_thread(scorer):
    from recommender.llm import scoring

    pieces = scorer.stream([{"role": "user", "content": "Tell me about films."}], max_new_tokens=200)
    next(pieces)
    assert len(scoring._ACTIVE_GENERATIONS) == 1
    pieces.close()  # the consumer went away (a closed browser tab, a reply past its deadline)
    assert not scoring._ACTIVE_GENERATIONS
    scoring.stop_all_generation()  # idempotent with nothing running


def _save_adapter(tiny_dir: Path, folder: Path, base: str, versions: dict[str, str]) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(folder)
    write_adapter_metadata(folder, base, versions, note="test")
    return folder


def test_adapter_with_matching_metadata_loads(tiny_dir, tmp_path):
    folder = _save_adapter(tiny_dir, tmp_path / "ok", "tiny-llama", {"rank": TEMPLATE_VERSIONS["rank"]})
    assert read_adapter_metadata(folder)["note"] == "test"
    loaded = load_model(tiny_dir, adapter=folder, device="cpu")
    assert loaded.adapter_path == folder and "LoRA ok" in loaded.describe()
    assert np.isfinite(rank(LLMScorer(loaded), [], items(3, "c"))).all()


def test_mismatched_adapter_is_refused(tiny_dir, tmp_path):
    other_base = _save_adapter(tiny_dir, tmp_path / "base", "SmolLM2-360M-Instruct", dict(TEMPLATE_VERSIONS))
    with pytest.raises(ModelLoadError, match="trained on base model 'SmolLM2-360M-Instruct' but 'tiny-llama'"):
        load_model(tiny_dir, adapter=other_base, device="cpu")
    old_prompts = _save_adapter(tiny_dir, tmp_path / "old", "tiny-llama", {"rank": "rank-v0"})
    with pytest.raises(ModelLoadError, match=r"prompt templates rank rank-v0 \(now rank-v1\)"):
        load_model(tiny_dir, adapter=old_prompts, device="cpu")
    (old_prompts / "recommender_adapter.json").unlink()
    with pytest.raises(ModelLoadError, match="has no recommender_adapter.json"):
        load_model(tiny_dir, adapter=old_prompts, device="cpu")
    (old_prompts / "recommender_adapter.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(tiny_dir, adapter=old_prompts, device="cpu")


def test_missing_paths_get_one_sentence(tiny_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="adapter folder .* does not exist"):
        load_model(tiny_dir, adapter=tmp_path / "nope", device="cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "no-model", device="cpu")
    with pytest.raises(ModelLoadError, match="neither a folder nor in the local Hugging Face cache"):
        load_model("someone/not-a-cached-model", device="cpu")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(tmp_path, device="cpu")
    with pytest.raises(ModelLoadError, match="quantize='8bit'"):
        load_model(tiny_dir, quantize="8bit")


def test_4bit_is_refused_without_bitsandbytes(tiny_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` fail
    with pytest.raises(ModelLoadError, match=r'pip install "llm-recommender\[cuda\]"'):
        load_model(tiny_dir, quantize="4bit", device="cpu")
    assert load_model(tiny_dir, quantize="auto", device="cpu").quantization == "none"


def test_auto_quantization_stays_float_on_cpu(tiny_dir):
    assert load_model(tiny_dir, quantize="auto", device="cpu").quantization == "none"


def test_4bit_on_cpu_loads_with_a_warning(tiny_dir):
    pytest.importorskip("bitsandbytes")
    with pytest.warns(UserWarning, match="about 2x slower"):
        loaded = load_model(tiny_dir, quantize="4bit", device="cpu")
    assert loaded.quantization == "4bit" and "4-bit" in loaded.describe()
    assert np.isfinite(rank(LLMScorer(loaded), items(2, "h"), items(4, "c"))).all()


def test_adapter_metadata_is_plain_json(tmp_path):
    path = write_adapter_metadata(tmp_path, "m", {"rank": "rank-v1"})
    assert json.loads(path.read_text())["template_versions"] == {"rank": "rank-v1"}


def _hardware(device="cpu", native_bf16=False, engines=("fbgemm",)):
    from recommender.llm.precision import Hardware

    return Hardware(device, "test CPU", frozenset(), native_bf16, engines)


def test_precision_follows_the_hardware_and_can_be_forced():
    from recommender.llm.precision import choose_precision

    assert choose_precision("auto", _hardware(native_bf16=True)).name == "bfloat16"
    assert choose_precision("auto", _hardware(native_bf16=False)).name == "float32"  # int8 only when asked
    assert choose_precision("auto", _hardware(native_bf16=False, engines=())).name == "float32"
    assert choose_precision("auto", _hardware("cuda")).name == "bfloat16"
    assert choose_precision("float32", _hardware(native_bf16=True)).name == "float32"
    assert choose_precision("int8", _hardware(native_bf16=True)).reason == "asked for"
    with pytest.raises(ValueError, match="for CPUs"):
        choose_precision("int8", _hardware("cuda"))
    with pytest.raises(ValueError, match="dtype must be one of"):
        choose_precision("fp8", _hardware())


def test_fast_never_picks_int8_and_the_environment_replaces_auto(monkeypatch):
    from recommender.llm import loading

    monkeypatch.setattr(loading, "detect_hardware", lambda device: _hardware(native_bf16=False))
    assert loading._precision("fast", "cpu").name == "float32"
    monkeypatch.setenv("RECOMMENDER_DTYPE", "bfloat16")
    assert loading._precision("auto", "cpu").name == "bfloat16"
    assert loading._precision("int8", "cpu").name == "int8"  # an explicit choice wins over the environment
    monkeypatch.setenv("RECOMMENDER_DTYPE", "fp4")
    with pytest.raises(ModelLoadError, match="dtype must be one of"):
        loading._precision("auto", "cpu")


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_reduced_precision_scores_close_to_float32_with_a_float32_head(tiny_dir, dtype):
    reference = LLMScorer(load_model(tiny_dir, device="cpu", dtype="float32"))
    loaded = load_model(tiny_dir, device="cpu", dtype=dtype)
    assert loaded.dtype == dtype and loaded.precision == {"dtype": dtype, "reason": "asked for", "device": "cpu"}
    assert loaded.model.get_output_embeddings().weight.dtype == torch.float32
    history, candidates = items(3, "h"), items(6, "c")
    low, full = rank(LLMScorer(loaded), history, candidates), rank(reference, history, candidates)
    assert np.isfinite(low).all() and low.shape == full.shape
    assert np.corrcoef(low, full)[0, 1] > 0.9  # the same ranking signal, within rounding


def test_int8_is_refused_beside_4bit(tiny_dir):
    with pytest.raises(ModelLoadError, match="int8"):
        load_model(tiny_dir, device="cpu", dtype="int8", quantize="4bit")


def test_stream_with_a_prefix_yields_it_first_and_continues_after_it(scorer):
    messages = [{"role": "user", "content": "Name a film."}]
    pieces = list(scorer.stream(messages, max_new_tokens=4, prefix="I recommend Fargo because"))
    assert pieces[0] == "I recommend Fargo because" and len(pieces) >= 2
    # The continuation is what greedy decoding gives after the prefilled words.
    inputs = scorer._generation_inputs(messages, 4, "I recommend Fargo because")
    with torch.inference_mode():
        out = scorer.model.generate(**inputs)
    expected = scorer.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "".join(pieces[1:]).strip() == expected.strip()
