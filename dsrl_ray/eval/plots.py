"""Learning-curve figure of a DSRL run: success rate and return against env steps, base policy as a line."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

_SIM_STEPS = "sim_steps"
_ENV_STEPS = "env_steps"


def read_progress(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``progress.csv`` written by ``dsrl-ray train``; empty cells become NaN."""
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def rolling_mean(values: list[float], window: int) -> list[float]:
    """Mean of the last ``window`` finite values up to each position (NaN until the first one)."""
    out, recent = [], []
    for value in values:
        if not math.isnan(value):
            recent = (recent + [value])[-window:]
        out.append(sum(recent) / len(recent) if recent else math.nan)
    return out


def plot_learning_curve(
    progress_csv: str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    base_success: float | None = None,
    base_return: float | None = None,
    final_success: float | None = None,
    final_return: float | None = None,
    final_env_steps: float | None = None,
    smoothing: int = 10,
    title: str = "DSRL",
    with_success: bool = True,
) -> Path:
    """Write a two-panel PNG: success rate (top) and episode return (bottom) vs env steps (only the
    return panel with ``with_success=False``: a task without success, e.g. gym locomotion).

    Each row of ``progress.csv`` holds the mean over the training episodes that ended in that
    iteration (few per iteration on long-horizon tasks): those are faint dots, their rolling mean
    over ``smoothing`` reported rows is the solid line. Evaluation points (if any) are green
    markers, the final evaluation of the steered policy a green star at the env step of the
    evaluated checkpoint (the last one unless ``final_env_steps`` says otherwise), and
    the base policy's level (``w ~ N(0, I)``) a dashed red line.

    Args:
        progress_csv: ``progress.csv`` of the run.
        out_png: output path.
        base_success: base policy's success rate in [0, 1].
        base_return: base policy's mean episode return (environment reward units).
        final_success: the steered policy's success rate in the final evaluation.
        final_return: the steered policy's mean return in the final evaluation.
        final_env_steps: env steps of the checkpoint the final evaluation used (default: the last row's).
        smoothing: rows in the rolling mean.
        title: figure title.
        with_success: draw the success panel.

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_progress(progress_csv)
    if not rows:
        raise ValueError(f"{str(progress_csv)!r} has no rows: the run logged no iteration")
    steps = [row[_ENV_STEPS] for row in rows]
    if with_success:
        fig, (ax_s, ax_r) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    else:
        fig, ax_r = plt.subplots(1, 1, figsize=(7, 3.8))
    panels = [(ax_r, "episode_return_mean", "eval_episode_return_mean", base_return, final_return, "episode return")]
    if with_success:
        panels.insert(0, (ax_s, "success_rate", "eval_success_rate", base_success, final_success, "success rate"))
    for ax, train_key, eval_key, base_level, final_level, label in panels:
        values = [row.get(train_key, math.nan) for row in rows]
        ax.plot(steps, values, ".", color="tab:blue", alpha=0.25, markersize=4)
        ax.plot(steps, rolling_mean(values, smoothing), color="tab:blue",
                label=f"steered, training episodes (mean of {smoothing} reports)")
        evaluated = [(s, row[eval_key]) for s, row in zip(steps, rows) if not math.isnan(row.get(eval_key, math.nan))]
        if evaluated:
            ax.plot(*zip(*evaluated), "o", color="tab:green", label="steered, evaluation")
        if final_level is not None:
            at = steps[-1] if final_env_steps is None else final_env_steps
            ax.plot([at], [final_level], "*", color="tab:green", markersize=14, label="steered, final evaluation")
        if base_level is not None:
            ax.axhline(base_level, color="tab:red", linestyle="--", label="base policy, w ~ N(0, I)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if with_success:
        ax_s.set_ylim(-0.02, 1.02)
    panels[0][0].legend(loc="best", fontsize=8)
    ax_r.set_xlabel("env steps (action chunks)")
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
