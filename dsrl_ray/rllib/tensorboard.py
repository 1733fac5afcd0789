"""TensorBoard event files from RLlib result dicts, with env steps on the x-axis.

``DSRL`` writes one per run (``<logdir>/tensorboard`` unless ``tensorboard_dir`` is set) from
every ``train()`` result, so a plain ``algo.train()`` loop gets event files too; Tune's own
TBX logger additionally writes ``ray/tune/...`` tags (DSRL sets ``timesteps_total`` to the
env steps, so Tune's x-axis is env steps as well).

Every numeric leaf of the result is written under its ``/``-joined path (e.g.
``env_runners/success_rate``, ``learners/default_policy/qf_loss``); ``global_step`` is
``num_env_steps_sampled_lifetime`` (latent-action steps, i.e. chunks, counted by RLlib).
"""

from __future__ import annotations

import numbers
import os
from typing import Any, Iterator, Mapping

import numpy as np

STEP_KEY = "num_env_steps_sampled_lifetime"
_SKIPPED = {"config", "pid", "hostname", "node_ip", "date", "timestamp", "trial_id", "experiment_id"}


def flatten_scalars(result: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(tag, value)`` for every finite int/float (or 0-d array) leaf of a nested result dict."""
    for key, value in result.items():
        if not prefix and key in _SKIPPED:
            continue
        tag = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from flatten_scalars(value, tag)
        elif isinstance(value, bool):
            yield tag, float(value)
        elif isinstance(value, numbers.Number) or (isinstance(value, np.ndarray) and value.ndim == 0):
            number = float(value)
            if np.isfinite(number):
                yield tag, number


class TensorBoardLogger:
    """Writes the scalars of successive ``train()`` results to ``logdir``.

    Args:
        logdir: directory of the event files (created if needed).
    """

    def __init__(self, logdir: str | os.PathLike) -> None:
        from tensorboardX import SummaryWriter

        self.logdir = str(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self._writer = SummaryWriter(self.logdir, flush_secs=10)

    def log(self, result: Mapping[str, Any]) -> int:
        """Write every scalar of ``result`` at ``global_step = result[STEP_KEY]``; returns that step."""
        step = int(result.get(STEP_KEY, 0))
        for tag, value in flatten_scalars(result):
            self._writer.add_scalar(tag, value, global_step=step)
        return step

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
