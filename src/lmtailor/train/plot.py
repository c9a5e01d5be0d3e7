"""The loss curves as a PNG: a person judges over- or under-fitting faster from a picture than from a log."""

from __future__ import annotations

import json
from pathlib import Path

from lmtailor.core.io import atomic_path


def plot_curves(metrics: Path, out: Path) -> None:
    """Training loss (and its moving average), validation loss, learning rate and tokens/s against step."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    lr = [(r["step"], r["learning_rate"]) for r in rows if "learning_rate" in r]
    speed = [(r["step"], r["tokens_per_s"]) for r in rows if "loss" in r and r.get("tokens_per_s")]

    fig, (ax, ax_lr, ax_speed) = plt.subplots(3, 1, figsize=(8, 8), sharex=True, height_ratios=(3, 1, 1))
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=1, label="train loss (each step)")
        window = max(len(losses) // 20, 1)
        smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
                  for i in range(len(losses))]  # fmt: skip
        ax.plot(steps, smooth, color="tab:blue", linewidth=2, label=f"train loss (mean of {window})")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", color="tab:orange", linewidth=2, label="validation loss")
    ax.set_ylabel("cross-entropy (nats / answer token)")
    ax.legend()
    ax.grid(alpha=0.3)
    if lr:
        ax_lr.plot(*zip(*lr, strict=True), color="tab:green")
    ax_lr.set_ylabel("learning rate")
    ax_lr.grid(alpha=0.3)
    if speed:
        ax_speed.plot(*zip(*speed, strict=True), color="tab:purple")
    ax_speed.set_ylabel("tokens/s")
    ax_speed.set_xlabel("optimizer step")
    ax_speed.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
