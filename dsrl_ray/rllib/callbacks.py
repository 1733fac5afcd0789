"""Env-runner callbacks: per-episode success and raw env-step counts from the chunked env's infos.

``ChunkedEnv`` reports ``info["success"]`` (some step of the chunk succeeded) and
``info["env_steps"]`` (simulator steps executed in the chunk) on every chunk step. These
callbacks accumulate both over an episode and log, per finished episode, on the runner's
metrics logger (so they appear under ``env_runners/`` and ``evaluation/env_runners/``):

- ``success_rate``: mean of per-episode success over the same window RLlib uses for
  ``episode_return_mean``;
- ``episode_env_steps_mean``: mean simulator steps per episode (RLlib's ``episode_len_mean``
  counts chunks);
- ``num_sim_steps_sampled_lifetime``: simulator steps of finished episodes, summed;
- ``num_sim_errors_lifetime``: episodes cut short by a simulator error (``info["sim_error"]``,
  see :class:`~dsrl_ray.envs.chunking.SimulatorError`), summed. The failed chunk step itself
  never reaches the replay (:func:`~dsrl_ray.rllib.episodes.episodes_to_transitions`).
"""

from __future__ import annotations

import math
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from dsrl_ray.envs.chunking import SIM_ERROR

SUCCESS = "success"
ENV_STEPS = "env_steps"
SIM_ERRORS_METRIC = "num_sim_errors_lifetime"


def _window(env_runner: Any) -> int:
    """RLlib's per-runner smoothing window for episode metrics."""
    config = env_runner.config
    return max(1, math.ceil(config.metrics_num_episodes_for_smoothing / (config.num_env_runners or 1)))


class DSRLMetricsCallback(RLlibCallback):
    """Logs ``success_rate``, simulator-step and simulator-error counts per episode (subclass it to add more)."""

    def on_episode_step(self, *, episode: Any, **kwargs: Any) -> None:
        info = episode.get_infos(-1)
        data = episode.custom_data
        data[SUCCESS] = bool(data.get(SUCCESS, False) or info.get(SUCCESS, False))
        data[ENV_STEPS] = int(data.get(ENV_STEPS, 0)) + int(info.get(ENV_STEPS, 1))

    def on_episode_end(self, *, episode: Any, env_runner: Any, metrics_logger: Any, **kwargs: Any) -> None:
        data = episode.custom_data
        success = bool(data.get(SUCCESS, False) or episode.get_infos(-1).get(SUCCESS, False))
        window = _window(env_runner)
        metrics_logger.log_value("success_rate", float(success), reduce="mean", window=window)
        metrics_logger.log_value("episode_env_steps_mean", int(data.get(ENV_STEPS, 0)), reduce="mean", window=window)
        metrics_logger.log_value("num_sim_steps_sampled_lifetime", int(data.get(ENV_STEPS, 0)), reduce="lifetime_sum")
        sim_error = bool(episode.get_infos(-1).get(SIM_ERROR, False))
        metrics_logger.log_value(SIM_ERRORS_METRIC, int(sim_error), reduce="lifetime_sum")
