"""Evaluation of base and steered policies: rollouts with success intervals, videos, plots."""

from dsrl_ray.eval.rollout import EpisodeResult, EvalResult, NoiseFn, evaluate_policy, wilson_interval

__all__ = ["EpisodeResult", "EvalResult", "NoiseFn", "evaluate_policy", "wilson_interval"]
