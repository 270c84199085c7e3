"""Score candidates with a loaded causal LM: ranking, yes/no, rating, and greedy generation.

    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer
    scorer = LLMScorer(load_model())
    # ranking goes through llm.ranking_prompts.score_requests (score_labels or score_lines)
    scorer.pointwise(history, candidates).scores       # P(Yes) per candidate, history prefix cached
    scorer.rate(rated_history, items).scores           # expected rating in [1, 5]
    scorer.generate(render_explain(history, item, evidence).messages)

How ranking works: candidates are labelled A, B, ... in one prompt; ONE forward pass gives the
next-token logits at the last position (``logits_to_keep``), and a candidate's score is the logit
of its label token, normalised over the labels shown (log-softmax). Users are batched with LEFT
padding and explicit position ids, so a user's scores do not depend on the batch they sit in.
Label token ids come from the tokenizer, checked once to be single tokens exactly where the chat
template puts the assistant's answer.

Line-scored prompts (``rank_evidence``, the fine-tuned adapters') instead read one score per
candidate in the same single pass: the "Yes" minus "No" logit at the last token of each
candidate's line (``score_lines``; 2-D ``logits_to_keep`` keeps just those positions). Each
candidate is then judged where its own evidence digit sits, instead of the last position having
to find the right line among twenty.
"""

from __future__ import annotations

import atexit
import copy
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.data import Item
from recommender.llm.loading import LoadedModel
from recommender.llm.prompting import (
    DEFAULT_MAX_HISTORY,
    LABELS,
    POINTWISE_ANSWERS,
    RATING_VALUES,
    candidate_line_ends,
    render_pointwise,
    tokens_at_chars,
)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class ScoredItems:
    """Scores for one user's items, in the order the items were given (higher is better)."""

    item_ids: tuple[str, ...]
    scores: np.ndarray  # [N] float64
    template: str
    template_version: str
    dropped_history: int = 0
    permutations: int = 1


def left_pad(sequences: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, T] ids, attention mask and position ids of token sequences, LEFT padded.

    Left padding ends every row at the last column; positions still start at 0 on each row, so
    a row's outputs do not depend on the batch it sits in.
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [B, T]
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [B, T]
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
    return ids, mask, positions


def length_batches(lengths: Sequence[int], batch_size: int, keep: Sequence[bool] | None = None) -> list[list[int]]:
    """Indices of the sequences (those with ``keep`` true) sorted by length and cut into batches of
    ``batch_size``, so each batch carries little padding."""
    indices = [i for i in range(len(lengths)) if keep is None or keep[i]]
    order = sorted(indices, key=lambda i: lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def line_readouts(tokenizer, messages: Messages, n_lines: int) -> tuple[list[int], list[int]]:
    """Token ids of the conversation (chat template, assistant turn opened) and the token index
    of the end of each of its first ``n_lines`` candidate lines, found in the last message
    (``prompting.candidate_line_ends``) so that text the chat template appends is never read."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    content = messages[-1]["content"]
    start = text.rfind(content)
    if start < 0:
        raise ValueError("the chat template rewrote the prompt's last message; its candidate lines cannot be located")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends = [start + end for end in candidate_line_ends(content, LABELS[:n_lines])]
    return encoded["input_ids"], tokens_at_chars(encoded["offset_mapping"], ends)


def line_scores(
    model, sequences: Sequence[list[int]], readouts: Sequence[Sequence[int]], answer_ids: torch.Tensor, pad_id: int
) -> torch.Tensor:
    """[B, K] "Yes" minus "No" logit at each readout token, K = the most readouts of a row.

    Rows with fewer readouts repeat their last one (slice them off). Differentiable: the
    fine-tuning loss and the serving scorer both call this.
    """
    ids, mask, positions = left_pad(sequences, pad_id)
    width, most = ids.shape[1], max(len(r) for r in readouts)
    keep = torch.tensor(
        [[width - len(s) + r for r in list(rs) + [rs[-1]] * (most - len(rs))] for s, rs in zip(sequences, readouts)]
    )  # [B, K] readout columns in padded coordinates
    device = next(p for p in model.parameters()).device
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        logits_to_keep=keep.to(device),
        use_cache=False,
    ).logits  # [B, K, V]
    if logits.shape[:2] != keep.shape:
        raise RuntimeError(
            f"the model returned logits of shape {tuple(logits.shape)} for per-row positions {tuple(keep.shape)}: "
            "line scoring needs a transformers release whose models accept a 2-D logits_to_keep (5.23 or later)"
        )
    pair = logits[..., answer_ids.to(device)].float()  # [B, K, 2]
    return pair[..., 0] - pair[..., 1]


def single_token_id(tokenizer, prompt_text: str, answer: str) -> int:
    """Token id of ``answer`` as the first token after ``prompt_text`` (a chat prompt with the
    assistant turn opened); ``ValueError`` when it is not exactly one extra token there."""
    base = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt_text + answer, add_special_tokens=False)["input_ids"]
    if len(full) != len(base) + 1 or full[: len(base)] != base:
        raise ValueError(
            f"answer {answer!r} is not a single token at the start of the assistant turn for this tokenizer; "
            "pick other labels (prompting.LABELS) for this model"
        )
    return full[-1]


class LLMScorer:
    """Prompt-based scorer over a ``LoadedModel``; implements ``protocols.Scorer``.

    Args:
        loaded: the model, tokenizer and recorded template versions (``recommender.llm.loading.load_model``).
        batch_size: prompts per forward pass.
        max_history: history items kept per prompt (oldest dropped first).
        suffix_batch_size: candidate suffixes per pass on a cached pointwise prefix (they are short).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        batch_size: int = 8,
        max_history: int | None = DEFAULT_MAX_HISTORY,
        suffix_batch_size: int = 32,
    ):
        self.loaded = loaded
        self.suffix_batch_size = suffix_batch_size
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.batch_size = batch_size
        self.max_history = max_history
        self.device = torch.device(loaded.device)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.label_ids = self.answer_token_ids(LABELS)  # [26]
        self.yes_no_ids = self.answer_token_ids(POINTWISE_ANSWERS)  # [2]
        self.rating_ids = self.answer_token_ids(RATING_VALUES)  # [5]

    # -- tokens --------------------------------------------------------------------------------

    def chat_text(self, messages: Messages) -> str:
        """The conversation as the model sees it, with the assistant turn opened (generation prompt)."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, messages: Messages, prefix: str = "") -> list[int]:
        """Token ids of ``chat_text(messages)`` (the chat template already holds the special tokens),
        followed by ``prefix``, the start of the assistant's answer."""
        return self.tokenizer(self.chat_text(messages) + prefix, add_special_tokens=False)["input_ids"]

    def answer_token_ids(self, answers: Sequence[str]) -> torch.Tensor:
        """Token id of each answer as the assistant's first token; ``ValueError`` if one is not a single token.

        Checked on a real rendered prompt: tokenize prompt and prompt + answer and require exactly one
        extra token, so a tokenizer that merges the answer with the template's newline is caught.
        """
        text = self.chat_text([{"role": "system", "content": "Answer."}, {"role": "user", "content": "Pick one."}])
        return torch.tensor([single_token_id(self.tokenizer, text, answer) for answer in answers], dtype=torch.long)

    # -- forward passes ------------------------------------------------------------------------

    @torch.inference_mode()
    def last_logits(self, sequences: Sequence[list[int]]) -> torch.Tensor:
        """[N, V] float32 next-token logits after each token sequence, batched with left padding.

        Sequences are sorted by length so batches carry little padding; results come back in input order.
        """
        out: list[torch.Tensor | None] = [None] * len(sequences)
        for chunk in length_batches([len(s) for s in sequences], self.batch_size):
            ids, mask, positions = left_pad([sequences[i] for i in chunk], self.pad_id)
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                logits_to_keep=1,
                use_cache=False,
            ).logits[:, -1, :]  # [B, V]
            for row, i in enumerate(chunk):
                out[i] = logits[row].float().cpu()
        return torch.stack(out) if out else torch.empty(0)  # type: ignore[arg-type]

    def score_labels(self, conversations: list[Messages], n_labels: Sequence[int]) -> list[np.ndarray]:
        """``protocols.Scorer``: for each conversation, the raw logits of labels A.. (its first ``n``)."""
        if len(conversations) != len(n_labels):
            raise ValueError(f"{len(conversations)} conversations but {len(n_labels)} label counts")
        logits = self.last_logits([self.encode(c) for c in conversations])  # [C, V]
        picked = logits[:, self.label_ids].double().numpy() if len(conversations) else np.zeros((0, 0))  # [C, 26]
        return [picked[c, :n].copy() for c, n in enumerate(n_labels)]

    @torch.inference_mode()
    def score_lines(self, conversations: list[Messages], n_lines: Sequence[int]) -> list[np.ndarray]:
        """For each line-scored conversation, the [n] "Yes" minus "No" logits read at the end of its
        first ``n`` candidate lines, in label order; one forward pass per batch of prompts."""
        if len(conversations) != len(n_lines):
            raise ValueError(f"{len(conversations)} conversations but {len(n_lines)} line counts")
        encoded = [line_readouts(self.tokenizer, c, n) for c, n in zip(conversations, n_lines)]
        out: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        # Prompts asked for no lines have nothing to read (and keep their empty score vector).
        lengths = [len(ids) for ids, _ in encoded]
        for chunk in length_batches(lengths, self.batch_size, keep=[n > 0 for n in n_lines]):
            margins = line_scores(
                self.model,
                [encoded[i][0] for i in chunk],
                [encoded[i][1] for i in chunk],
                self.yes_no_ids,
                self.pad_id,
            )  # [B, K]
            for row, i in enumerate(chunk):
                out[i] = margins[row, : n_lines[i]].double().cpu().numpy()
        return out

    # -- pointwise yes/no ----------------------------------------------------------------------

    def _yes_probability(self, logits: torch.Tensor) -> np.ndarray:
        pair = logits[..., self.yes_no_ids].double()  # [N, 2]
        return torch.softmax(pair, -1)[..., 0].numpy()

    def pointwise(self, history: Sequence[Item], candidates: Sequence[Item], cache_prefix: bool = True) -> ScoredItems:
        """P(Yes) per candidate (softmax over the "Yes"/"No" tokens).

        With ``cache_prefix`` the tokens all candidate prompts share (system prompt + history) run
        through the model ONCE; its KV cache is copied per batch of candidate suffixes. Without it,
        every candidate prompt runs in full (the naive baseline; same scores within float error).
        """
        rendered = [render_pointwise(history, item, max_history=self.max_history) for item in candidates]
        sequences = [self.encode(p.messages) for p in rendered]
        if not cache_prefix or len(sequences) < 2 or _common_prefix(sequences) == 0:
            scores = self._yes_probability(self.last_logits(sequences)) if sequences else np.zeros(0)
        else:
            scores = self._yes_probability(self._shared_prefix_logits(sequences))
        return ScoredItems(
            item_ids=tuple(item.id for item in candidates),
            scores=scores,
            template="pointwise",
            template_version=rendered[0].template_version if rendered else "",
            dropped_history=rendered[0].dropped_history if rendered else 0,
        )

    @torch.inference_mode()
    def _shared_prefix_logits(self, sequences: Sequence[list[int]]) -> torch.Tensor:
        """[N, V] last logits of sequences sharing a token prefix, the prefix computed once.

        The prefix is the longest common TOKEN prefix (not text), so the tokens fed are exactly those of
        the naive path; every suffix keeps at least one token.
        """
        from transformers import DynamicCache

        prefix = _common_prefix(sequences)
        cache = DynamicCache(config=self.model.config)
        head = torch.tensor([sequences[0][:prefix]], device=self.device)  # [1, P]
        self.model(input_ids=head, past_key_values=cache, use_cache=True, logits_to_keep=1)
        out = []
        for start in range(0, len(sequences), self.suffix_batch_size):
            tails = [s[prefix:] for s in sequences[start : start + self.suffix_batch_size]]
            width = max(len(t) for t in tails)
            # Right padding here: pads sit after each real suffix, so causal attention never sees them.
            ids = torch.full((len(tails), width), self.pad_id, dtype=torch.long)  # [B, S]
            mask = torch.zeros((len(tails), prefix + width), dtype=torch.long)  # [B, P + S]
            mask[:, :prefix] = 1
            for row, tail in enumerate(tails):
                ids[row, : len(tail)] = torch.tensor(tail)
                mask[row, prefix : prefix + len(tail)] = 1
            positions = (prefix + torch.arange(width)).expand(len(tails), width)  # [B, S]
            last = torch.tensor([[len(t) - 1] for t in tails])  # [B, 1] index of each row's last real token
            batch_cache = copy.deepcopy(cache)
            batch_cache.batch_repeat_interleave(len(tails))
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                past_key_values=batch_cache,
                use_cache=True,
                logits_to_keep=last.to(self.device),
            ).logits[:, 0, :]  # [B, V]
            out.append(logits.float().cpu())
        return torch.cat(out)

    # -- rating --------------------------------------------------------------------------------

    def rating_logits(self, conversations: list[Messages]) -> list[np.ndarray]:
        """For each rating conversation, the [5] next-token logits of the digits "1".."5" (one
        batched forward pass per batch; ``llm.rating_prompt.RatingPrompt.read`` turns them into a rating)."""
        if not conversations:
            return []
        logits = self.last_logits([self.encode(c) for c in conversations])  # [C, V]
        picked = logits[:, self.rating_ids].double().numpy()  # [C, 5]
        return [row.copy() for row in picked]

    def rate(self, history: Sequence[tuple[Item, float]], items: Sequence[Item], prompt=None) -> ScoredItems:
        """Expected rating in [1, 5] per item, from the rated history alone (no train-split evidence;
        ``Recommender.predict_rating`` adds it): softmax over the "1".."5" tokens, then the mean.

        Args:
            prompt: a ``llm.rating_prompt.RatingPrompt`` (default: its defaults).
        """
        from recommender.llm.rating_prompt import RatingPrompt, RatingRequest, rate_requests

        prompt = prompt or RatingPrompt()
        requests = [RatingRequest(list(history), item) for item in items]
        return ScoredItems(
            item_ids=tuple(item.id for item in items),
            scores=rate_requests(self, prompt, requests),
            template=prompt.name,
            template_version=prompt.version,
            dropped_history=prompt.render(requests[0]).dropped_history if requests else 0,
        )

    # -- generation ----------------------------------------------------------------------------

    def _generation_inputs(self, messages: Messages, max_new_tokens: int, prefix: str = "") -> dict:
        from transformers import GenerationConfig

        ids = torch.tensor([self.encode(messages, prefix)], device=self.device)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "generation_config": config}

    @torch.inference_mode()
    def generate(self, messages: Messages, max_new_tokens: int = 96) -> str:
        """Greedy reply to chat messages (explanations, chat turns), special tokens stripped."""
        inputs = self._generation_inputs(messages, max_new_tokens)
        out = self.model.generate(**inputs)  # [1, T + new]
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def stream(self, messages: Messages, max_new_tokens: int = 96, prefix: str = "") -> Iterator[str]:
        """Like ``generate`` but yields text pieces as they are produced (for the chat UI).

        ``prefix`` is the start of the assistant's answer, written into the prompt (read in the one
        prefill pass instead of one pass per token) and yielded first.

        Generation runs in a thread that stops at the next token once the consumer closes this
        iterator, or when ``stop_all_generation`` runs (at interpreter exit, or a server's shutdown):
        a generation thread still inside torch when Python exits aborts the process.
        """
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class StopOnEvent(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        inputs = self._generation_inputs(messages, max_new_tokens, prefix)

        def work() -> None:
            with torch.inference_mode():
                self.model.generate(
                    **inputs, streamer=streamer, stopping_criteria=StoppingCriteriaList([StopOnEvent()])
                )

        thread = threading.Thread(target=work, daemon=True)
        _ACTIVE_GENERATIONS.add((stop, thread))
        thread.start()
        try:
            if prefix:
                yield prefix
            yield from (piece for piece in streamer if piece)
        finally:
            stop.set()
            thread.join()
            _ACTIVE_GENERATIONS.discard((stop, thread))


_ACTIVE_GENERATIONS: set[tuple[threading.Event, threading.Thread]] = set()


def stop_all_generation(timeout: float = 30.0) -> None:
    """Ask every streaming generation to stop at its next token and wait for its thread."""
    for stop, _ in list(_ACTIVE_GENERATIONS):
        stop.set()
    for _, thread in list(_ACTIVE_GENERATIONS):
        thread.join(timeout)


atexit.register(stop_all_generation)


def _common_prefix(sequences: Sequence[list[int]]) -> int:
    """Length of the longest common token prefix, leaving every sequence at least one token after it."""
    shortest = min(len(s) for s in sequences)
    prefix = 0
    while prefix < shortest - 1 and all(s[prefix] == sequences[0][prefix] for s in sequences):
        prefix += 1
    return prefix


__all__ = ["LLMScorer", "ScoredItems"]
