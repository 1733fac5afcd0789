"""Keep the checkpoint whose recent training episodes scored best (``<run_dir>/checkpoints/best``).

Stable-Baselines3's ``EvalCallback`` keeps a best model by a separate evaluation; Tune keeps
checkpoints by ``checkpoint_score_attribute``. Here the score is free: the mean success (or
return) of the last ``N`` *training* episodes when a checkpoint is written. The noise policy
acts in training exactly as the pipeline's evaluation does (``w`` sampled from ``pi_w``), so the
score estimates what the evaluation will measure. The evaluation episodes (other env seeds)
then give an unbiased number for the chosen checkpoint: picking the best of several noisy scores
overrates the score itself, never the evaluation.

Layout::

    <run_dir>/checkpoints/best/            a copy of the best iter_N checkpoint, plus
    <run_dir>/checkpoints/best/best.json   {"iteration", "env_steps", "metric", "score", "episodes"}
"""

from __future__ import annotations

import json
import os
import shutil
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

BEST = "best"
BEST_JSON = "best.json"
_PARTIAL = ".partial_best"
_OLD = ".old_best"


class EpisodeWindow:
    """The mean of a per-episode metric over the last ``size`` episodes.

    Training results report, per iteration, the mean over the episodes that ended in it and their
    count; :meth:`add` spreads that mean over the count (exact for the window's sum whenever the
    window holds whole iterations).
    """

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"episode window size={size!r}; expected a positive integer")
        self.size = size
        self._values: deque[float] = deque(maxlen=size)

    def add(self, mean: float | None, count: int | None) -> None:
        """Record ``count`` episodes whose metric averaged ``mean`` (``None`` or 0 episodes: nothing)."""
        if mean is None or not count:
            return
        self._values.extend([float(mean)] * int(count))

    @property
    def full(self) -> bool:
        """``size`` episodes have been recorded."""
        return len(self._values) == self.size

    @property
    def mean(self) -> float:
        """Mean over the recorded episodes (at most ``size``).

        Raises:
            ValueError: no episode recorded yet.
        """
        if not self._values:
            raise ValueError("no episode recorded yet; the window has no mean")
        return sum(self._values) / len(self._values)


@dataclass(frozen=True)
class BestCheckpoint:
    """What ``best.json`` records about ``checkpoints/best``.

    Attributes:
        iteration: training iteration of the copied checkpoint.
        env_steps: env (chunk) steps sampled by then.
        metric: the ``progress.csv`` column scored (``success_rate`` or ``episode_return_mean``).
        score: that metric's mean over the last ``episodes`` training episodes.
        episodes: the window length.
        path: the ``best`` checkpoint directory (not stored in the JSON).
    """

    iteration: int
    env_steps: int
    metric: str
    score: float
    episodes: int
    path: Path

    def to_json(self) -> str:
        fields = asdict(self)
        fields.pop("path")
        return json.dumps(fields, indent=2)


def read_best(checkpoints: str | os.PathLike) -> BestCheckpoint | None:
    """The best checkpoint kept under ``checkpoints`` (``None``: none yet)."""
    path = Path(checkpoints) / BEST
    record = path / BEST_JSON
    if not record.is_file():
        return None
    return BestCheckpoint(**json.loads(record.read_text(encoding="utf-8")), path=path)


def keep_best(checkpoint: Path, *, iteration: int, env_steps: int, metric: str, score: float,
              episodes: int) -> BestCheckpoint:
    """Copy ``checkpoint`` (with its ``best.json``) to ``best`` next to it.

    The copy is assembled in a hidden partial directory and renamed into place, so ``best`` is
    always a complete checkpoint with its record (a crash between the two renames leaves the
    previous best under ``.old_best``, and no ``best``).
    """
    root = checkpoint.parent
    partial, final, old = root / _PARTIAL, root / BEST, root / _OLD
    best = BestCheckpoint(iteration=iteration, env_steps=env_steps, metric=metric, score=score, episodes=episodes,
                          path=final)
    for leftover in (partial, old):
        shutil.rmtree(leftover, ignore_errors=True)
    shutil.copytree(checkpoint, partial)
    (partial / BEST_JSON).write_text(best.to_json(), encoding="utf-8")
    if final.exists():
        os.replace(final, old)
    os.replace(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    return best


class BestScorer:
    """Scores each new checkpoint by the last training episodes and keeps the best one.

    Args:
        episodes: the window length; ``None`` turns keeping a best checkpoint off.
        metric: the ``progress.csv`` column to score (``success_rate`` or ``episode_return_mean``).
        warm_up_env_steps: rows up to this many env steps are not scored: their episodes were
            acted with ``w ~ N(0, I)``, not by the noise policy a checkpoint holds. (An episode
            that straddles the end of the warm-up counts; there is at most one per env.)
        best: the best checkpoint a resumed run kept (``None``: none yet).
    """

    def __init__(self, episodes: int | None, metric: str, warm_up_env_steps: int,
                 best: BestCheckpoint | None = None) -> None:
        self.window = EpisodeWindow(episodes) if episodes is not None else None
        self.metric, self.warm_up_env_steps, self.best = metric, warm_up_env_steps, best

    def add(self, row: Mapping[str, float | None]) -> None:
        """Record the episodes of one ``progress.csv`` row (its ``metric`` and ``episodes`` columns)."""
        if self.window is not None and (row["env_steps"] or 0) > self.warm_up_env_steps:
            self.window.add(row[self.metric], row["episodes"])

    def consider(self, checkpoint: Path, iteration: int, env_steps: int) -> None:
        """Copy ``checkpoint`` to ``best`` if the window is full and scores above the best so far."""
        if self.window is None or not self.window.full:
            return
        score = self.window.mean
        if self.best is None or score > self.best.score:
            self.best = keep_best(checkpoint, iteration=iteration, env_steps=env_steps, metric=self.metric,
                                  score=score, episodes=self.window.size)
