"""``curves.png`` of a fine-tuning run: training loss and validation NDCG@10 against steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recommender.finetune.loop import TrainerState


def plot_curves(state: TrainerState, path: Path, title: str, chance_loss: float | None = None) -> None:
    """Training loss and validation NDCG@10 (LLM rerank, blend, retriever order) against steps;
    ``chance_loss`` (ln of the candidate count) is drawn as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if state.losses:
        steps, losses = np.array(state.losses).T
        left.plot(steps, losses, alpha=0.3, label="loss (per step)")
        window = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        left.plot(steps[window - 1 :], smooth, label=f"loss ({window}-step mean)")
    if chance_loss is not None:
        left.axhline(chance_loss, color="grey", linestyle="--", label=f"uniform guess ({chance_loss:.2f})")
    left.set_xlabel("step")
    left.set_ylabel("completion cross-entropy")
    left.legend()
    if state.evals:
        steps = [e["step"] for e in state.evals]
        for key, label in (
            ("NDCG@10", "LLM rerank"),
            ("blend_NDCG@10", "LLM + retrieval blend"),
            ("retriever_NDCG@10", "retriever order"),
        ):
            right.plot(steps, [e[key] for e in state.evals], marker="o", label=label)
    right.set_xlabel("step")
    right.set_ylabel(f"validation NDCG@10 ({state.evals[0]['users'] if state.evals else 0} users)")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
