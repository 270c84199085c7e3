"""Writing explanations with the LLM: decoding that does not repeat itself, prefilled answers.

    answers = generate_answers(writer, conversations, prefixes, Decoding())         # greedy, one each
    candidates = generate_candidates(writer, conversations, prefixes, Decoding())  # greedy + sampled

``writer`` is an ``LLMScorer`` (``Recommender.text_writer()``: the base model). Each answer starts
with its prefix ("Because you watched Fargo (1996), you may like Heat (1995)"), written into the
prompt so the model continues it, and greedy decoding runs with a repetition penalty and a
no-repeat n-gram ban that look at the ANSWER only: transformers' own ``repetition_penalty`` and
``no_repeat_ngram_size`` also count the prompt, so they would forbid copying a title or a year from
the facts the prompt gives. One batched ``generate`` call with left padding serves one request or a
bench's batch alike. ``generate_candidates`` adds ``Decoding.candidates - 1`` sampled answers after
the greedy one, for a gate that shows the first it accepts (``explain.explain_item``). torch is
imported when called, never at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Decoding:
    """How explanations are decoded (greedy)."""

    max_new_tokens: int = field(default=64, metadata={"help": "new tokens after the prefilled prefix"})
    repetition_penalty: float = field(
        default=1.3, metadata={"help": "divides the logit of tokens already in the answer (1 = off)"}
    )
    no_repeat_ngram_size: int = field(
        default=4, metadata={"help": "an n-gram of the answer never appears twice (0 = off; 3 would ban '(19' twice)"}
    )
    # 1 (greedy only). On validation users 3 answers let the gate accept 10 of 18 instead of 6 (5 of 10 instead
    # of 4 in a bench run), but a sampled sentence it accepted implied the person knew the film ("the film that
    # played a pivotal role in shaping your appreciation"): more tries find more of what the rubric cannot read.
    candidates: int = field(
        default=1,
        metadata={
            "help": "answers per explanation: the greedy one, then sampled ones (the gate takes the first it accepts)"
        },
    )
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature of the candidates after the first"})
    seed: int = field(default=0, metadata={"help": "torch seed of the sampled candidates"})


def _processors(decoding: Decoding, starts: Sequence[int]) -> list[Any]:
    """Logits processors that read each row's answer only (from ``starts[row]`` on)."""
    import torch
    from transformers import LogitsProcessor, RepetitionPenaltyLogitsProcessor

    class AnswerNoRepeatNGram(LogitsProcessor):
        """Bans the token that would repeat an n-gram already in the row's answer."""

        def __init__(self, size: int, starts: Sequence[int]):
            self.size, self.starts = size, list(starts)

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:  # [B, T], [B, V]
            n = self.size
            for row, start in enumerate(self.starts):
                answer = input_ids[row, start:].tolist()
                if len(answer) < n:
                    continue
                tail = answer[len(answer) - n + 1 :]
                banned = {answer[i + n - 1] for i in range(len(answer) - n + 1) if answer[i : i + n - 1] == tail}
                if banned:
                    scores[row, list(banned)] = -float("inf")
            return scores

    processors: list[Any] = []
    if decoding.repetition_penalty != 1.0:
        ignore = torch.tensor(list(starts), dtype=torch.long)  # [B] prompt tokens before each answer
        processors.append(RepetitionPenaltyLogitsProcessor(float(decoding.repetition_penalty), ignore))
    if decoding.no_repeat_ngram_size > 0:
        processors.append(AnswerNoRepeatNGram(decoding.no_repeat_ngram_size, starts))
    return processors


def generate_candidates(
    writer: Any, conversations: Sequence[Messages], prefixes: Sequence[str], decoding: Decoding = Decoding()
) -> list[list[str]]:
    """``decoding.candidates`` answers per conversation: the greedy answer first, then sampled ones
    (``temperature``, torch seeded with ``decoding.seed``), each the prefix followed by what the model wrote."""
    import torch

    answers = [[a] for a in generate_answers(writer, conversations, prefixes, decoding)]
    extra = decoding.candidates - 1
    if extra > 0 and conversations:
        torch.manual_seed(decoding.seed)
        repeated = [c for c in conversations for _ in range(extra)]
        sampled = _generate(writer, repeated, [p for p in prefixes for _ in range(extra)], decoding, sample=True)
        for i, answer in enumerate(sampled):
            answers[i // extra].append(answer)
    return answers


def generate_answers(
    writer: Any, conversations: Sequence[Messages], prefixes: Sequence[str], decoding: Decoding = Decoding()
) -> list[str]:
    """Greedy answers to ``conversations``, each the prefix followed by what the model wrote.

    Args:
        writer: an ``LLMScorer`` (``model``, ``tokenizer``, ``encode(messages, prefix)``, ``pad_id``, ``device``).
        conversations: chat messages, one list per answer.
        prefixes: the start of each answer ("" for none), prefilled in the assistant turn.
        decoding: penalties and length.
    """
    return _generate(writer, conversations, prefixes, decoding, sample=False)


def _generate(
    writer: Any, conversations: Sequence[Messages], prefixes: Sequence[str], decoding: Decoding, sample: bool
) -> list[str]:
    import torch

    if len(prefixes) != len(conversations):
        raise ValueError(f"{len(prefixes)} prefixes for {len(conversations)} conversations")
    if not conversations:
        return []
    prompts = [writer.encode(messages) for messages in conversations]
    sequences = [writer.encode(messages, prefix) for messages, prefix in zip(conversations, prefixes)]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), writer.pad_id, dtype=torch.long)  # [B, T]
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [B, T]
    starts = []
    for row, (prompt, sequence) in enumerate(zip(prompts, sequences)):
        ids[row, width - len(sequence) :] = torch.tensor(sequence)
        mask[row, width - len(sequence) :] = 1
        # The answer starts where prompt and prompt + prefix part (the tokeniser may merge at the seam).
        shared = next((i for i, (a, b) in enumerate(zip(prompt, sequence)) if a != b), min(len(prompt), len(sequence)))
        starts.append(width - len(sequence) + shared)
    with torch.inference_mode():
        out = writer.model.generate(
            input_ids=ids.to(writer.device),
            attention_mask=mask.to(writer.device),
            do_sample=sample,
            **({"temperature": decoding.temperature, "top_k": 0, "top_p": 1.0} if sample else {}),
            max_new_tokens=decoding.max_new_tokens,
            logits_processor=_processors(decoding, starts),
            pad_token_id=writer.pad_id,
            eos_token_id=writer.tokenizer.eos_token_id,
        )  # fmt: skip  [B, T + new]
    written = [writer.tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]
    return [_seam(prefix, text) for prefix, text in zip(prefixes, written)]


def _seam(prefix: str, text: str) -> str:
    """Prefix + continuation with one space at the seam ("watched Fargo (1996)," + "you may ...")."""
    if not prefix:
        return text.strip()
    text = text.rstrip()
    if text and not text[0].isspace() and text[0] not in ",.;:!?)":
        text = " " + text
    return prefix + text


__all__ = ["Decoding", "generate_answers", "generate_candidates"]
