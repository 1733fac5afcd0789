"""Results across tasks: the per-task ``summary.json`` files of ``dsrl-ray pipeline`` as one figure and one table.

Each summary holds the base and steered evaluation on the same episodes (success rate with its
95 % Wilson interval, mean return with its 95 % interval), the DSRL env steps, the wall time and
the machine. Tasks with a notion of success are compared on success; the others on return.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Mapping

SUMMARY_JSON = "summary.json"


def machine_description() -> str:
    """This machine in a few words, e.g. ``2 cores x86_64, CPU only`` (``+ 1 GPU`` with CUDA)."""
    import torch

    gpus = torch.cuda.device_count()
    accelerator = f"{gpus} GPU ({torch.cuda.get_device_name(0)})" if gpus else "CPU only"
    return f"{os.cpu_count()} cores {platform.machine()}, {accelerator}"


def evaluation_row(result: Any) -> dict[str, Any]:
    """The summary entry of one :class:`~dsrl_ray.eval.rollout.EvalResult`."""
    return {"success_rate": result.success_rate, "success_ci95": list(result.success_ci95),
            "mean_return": result.mean_return, "return_ci95": list(result.return_ci95)}


def load_summaries(paths: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """The summaries in ``paths`` (``summary.json`` files or run directories holding one), in order."""
    out = []
    for path in map(Path, paths):
        file = path / SUMMARY_JSON if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"no pipeline summary at {str(file)!r}; expected RUN_DIR/{SUMMARY_JSON}")
        out.append(json.loads(file.read_text()))
    return out


def _uses_success(summary: Mapping[str, Any]) -> bool:
    return summary.get("metric", "success") == "success"


def _cell(row: Mapping[str, Any], success: bool) -> str:
    if success:
        low, high = row["success_ci95"]
        return f"{row['success_rate']:.1%} ({low:.1%}–{high:.1%})"
    low, high = row["return_ci95"]
    return f"{row['mean_return']:.1f} ({low:.1f}–{high:.1f})"


def summary_table(summaries: list[Mapping[str, Any]]) -> str:
    """A markdown table: one row per task, failures included with their numbers."""
    lines = [
        "| task | metric | base (95 % CI) | steered (95 % CI) | eval episodes | DSRL env steps | wall time | machine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        success = _uses_success(s)
        lines.append(
            f"| {s['task']} ({s.get('policy_type', 'diffusion')}, DSRL-{s['variant'].upper()}) "
            f"| {'success' if success else 'return'} | {_cell(s['base'], success)} | {_cell(s['steered'], success)} "
            f"| {s['episodes']} | {s['dsrl_env_steps']} | {s['wall_time_s'] / 60:.1f} min | {s.get('machine', '?')} |"
        )
    return "\n".join(lines) + "\n"


def plot_summaries(summaries: list[Mapping[str, Any]], out_png: str | os.PathLike) -> Path:
    """Base vs steered per task, with 95 % intervals: success panels first, then return panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summaries:
        raise ValueError("plot_summaries needs at least one summary")
    fig, axes = plt.subplots(1, len(summaries), figsize=(2.6 * len(summaries) + 1, 3.6), squeeze=False)
    for ax, s in zip(axes[0], summaries):
        success = _uses_success(s)
        key, ci = ("success_rate", "success_ci95") if success else ("mean_return", "return_ci95")
        values = [s["base"][key], s["steered"][key]]
        errors = [[v - s[name][ci][0] for v, name in zip(values, ("base", "steered"))],
                  [s[name][ci][1] - v for v, name in zip(values, ("base", "steered"))]]
        ax.bar(["base", "steered"], values, yerr=errors, capsize=6, color=["#999999", "#1f77b4"])
        ax.set_title(f"{s['task']} ({s.get('policy_type', 'diffusion')})", fontsize=10)
        ax.set_ylabel("success rate" if success else "return")
        if success:
            ax.set_ylim(0, 1.05)
    fig.suptitle("DSRL: base vs steered on the same evaluation episodes (95 % intervals)", fontsize=11)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".partial_{out.name}")
    fig.savefig(partial, format="png", dpi=110)
    plt.close(fig)
    os.replace(partial, out)
    return out
