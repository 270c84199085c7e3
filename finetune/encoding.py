"""Training examples as token ids (``Encoded``), and the loss of a micro-batch of them.

The ids come through the tokenizer's chat template exactly as the serving scorer builds them;
the loss reads the same positions the serving scorer ranks by (see ``batch_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Encoded:
    """A tokenised example: ``ids`` = prompt + completion; the last ``n_completion`` ids are the answer."""

    ids: list[int]
    n_completion: int
    choice_ids: tuple[int, ...] = ()  # token ids of the allowed one-token answers (empty: free text)
    target: int = -1  # index of the answer in ``choice_ids`` (or in ``readouts``)
    readouts: tuple[int, ...] = ()  # line-scored prompts: token index of each candidate line's end
    variants: tuple[Encoded, ...] = ()  # (removed, reordered) of a counterfactual example, same candidates


def encode_examples(examples: Sequence, tokenizer) -> list[Encoded]:
    """Token ids of each example through the tokenizer's chat template (as the serving scorer does)."""
    from recommender.llm.ranking_prompts import PROMPTS
    from recommender.llm.scoring import line_readouts, single_token_id

    end = tokenizer.eos_token or ""
    out = []
    answer_ids: dict[str, int] = {}  # checked once per answer: one token right after the assistant prompt
    for example in examples:
        prompt = PROMPTS.get(example.template)
        if prompt is not None and prompt.readout == "line":
            variants = tuple(encode_examples(example.variants, tokenizer))
            prompt, readouts = line_readouts(tokenizer, example.messages, len(example.choices))
            target = example.choices.index(example.completion)
            out.append(Encoded(prompt, 0, target=target, readouts=tuple(readouts), variants=variants))
            continue
        text = tokenizer.apply_chat_template(example.messages, tokenize=False, add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        if example.choices:
            for choice in example.choices:
                if choice not in answer_ids:
                    answer_ids[choice] = single_token_id(tokenizer, text, choice)
            choice_ids = tuple(answer_ids[c] for c in example.choices)
            target = example.choices.index(example.completion)
            out.append(Encoded(prompt + [choice_ids[target]], 1, choice_ids, target))
        else:
            completion = tokenizer(example.completion + end, add_special_tokens=False)["input_ids"]
            out.append(Encoded(prompt + completion, len(completion)))
    return out


def batch_loss(
    model,
    batch: Sequence[Encoded],
    pad_id: int,
    choice_loss: str = "labels",
    answer_ids=None,
    influence: tuple[float, float, float] = (0.0, 0.0, 1.0),
):
    """Mean completion-only loss of a micro-batch.

    Line-scored examples: cross-entropy over the candidates' line scores (``scoring.line_scores``,
    ``answer_ids`` = the "Yes"/"No" token ids), exactly what the serving scorer ranks by.
    One-token answers with ``choice_loss='labels'``: cross-entropy over the allowed answers'
    logits; otherwise token cross-entropy over the completion.
    ``influence`` = (weight, margin, order weight): an example with counterfactual ``variants`` adds
    weight x (``influence_term`` of the target's log-probability among the candidates in its prompts;
    order weight 0 leaves the reordered prompt out).
    """
    import torch
    import torch.nn.functional as F

    from recommender.llm.scoring import left_pad, line_scores

    lined = [e for e in batch if e.readouts]
    rest = [e for e in batch if not e.readouts]
    losses = []
    if lined:
        if answer_ids is None:
            raise ValueError("line-scored examples need answer_ids (the Yes/No token ids)")
        weight, margin, order_weight = influence
        used = 2 if order_weight > 0 else 1  # (removed, reordered) or the removed one alone
        prompts = list(lined)
        if weight > 0:
            prompts += [v for e in lined for v in e.variants[:used]]
        margins = line_scores(model, [e.ids for e in prompts], [e.readouts for e in prompts], answer_ids, pad_id)
        variant_row = len(lined)
        for row, example in enumerate(lined):
            scores = margins[row, : len(example.readouts)]  # [K]
            loss = F.cross_entropy(scores[None], torch.tensor([example.target], device=scores.device))
            if weight > 0 and example.variants:
                rows = margins[[row, *range(variant_row, variant_row + used)], : len(example.readouts)]  # [1 + used, K]
                variant_row += used
                target = rows.log_softmax(dim=-1)[:, example.target]
                loss = loss + weight * influence_term(target, margin, order_weight)
            losses.append(loss)
    if not rest:
        return torch.stack(losses).mean()
    batch = rest
    ids, mask, positions = left_pad([e.ids for e in batch], pad_id)
    device = next(p for p in model.parameters()).device
    keep = max(e.n_completion for e in batch) + 1
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        logits_to_keep=keep,
        use_cache=False,
    ).logits.float()  # [B, keep, V]
    for row, example in enumerate(batch):
        c = example.n_completion
        predictions = logits[row, keep - 1 - c : keep - 1]  # [c, V] predict the completion tokens
        if example.choice_ids and choice_loss == "labels":
            allowed = predictions[0, list(example.choice_ids)]  # [n]
            losses.append(F.cross_entropy(allowed[None], torch.tensor([example.target], device=device)))
        else:
            targets = torch.tensor(example.ids[-c:], device=device)
            losses.append(F.cross_entropy(predictions, targets))
    return torch.stack(losses).mean()


def influence_term(target_scores, margin: float, order_weight: float = 1.0):
    """[3] target log-probabilities (as shown, removed, reordered; [2] without the reordered one) ->
    the hinge wanting removal of the linked film to cost ``margin`` nats plus ``order_weight`` x the
    absolute change when two shown films trade places."""
    as_shown, removed = target_scores[0], target_scores[1]
    hinge = (margin - (as_shown - removed)).clamp(min=0)
    if order_weight == 0 or len(target_scores) < 3:
        return hinge
    return hinge + order_weight * (as_shown - target_scores[2]).abs()
