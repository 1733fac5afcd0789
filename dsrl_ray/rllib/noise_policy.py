"""A trained noise policy pi_w, loaded from a DSRL checkpoint, as a plain function of observations.

Used to evaluate or film a steered policy outside RLlib: ``evaluate_policy(task, pi_dp, n,
noise_fn=noise_policy)`` runs the frozen base policy on the noise ``pi_w`` chooses.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dsrl_ray.core.noise_policy import act
from dsrl_ray.rllib.module import NOISE_BASE, DSRLTorchRLModule
from dsrl_ray.policies import BasePolicy

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"
"""Where ``Algorithm.save_to_path`` puts the RLModule inside a checkpoint directory."""


class UntrainedNoisePolicyError(ValueError):
    """A DSRL checkpoint whose noise policy still acts with the base policy's ``w ~ N(0, I)``."""


class NoisePolicy:
    """Steering noise of a trained DSRL module: ``w = action_magnitude * tanh(u)``.

    ``u`` is the actor's mean (deterministic, the default) or, with ``explore=True``, a sample
    of its Gaussian drawn from a generator seeded with ``seed`` (as the runners act in training).

    Args:
        module: the DSRL RLModule (its actor ``pi`` and its frozen base policy are used).
        explore: sample the noise instead of taking the mode.
        seed: seed of the sampling generator.
        source: how an error names the module (e.g. its checkpoint path).

    Calling it maps normalised observations ``(B, obs_dim)`` (numpy) to noise
    ``(B, chunk_len, act_dim)`` float32, the layout ``evaluate_policy``'s ``noise_fn`` takes.
    """

    def __init__(
        self, module: DSRLTorchRLModule, *, explore: bool = False, seed: int = 0, source: str = "this checkpoint"
    ) -> None:
        if int(module.noise_mode) == NOISE_BASE:
            raise UntrainedNoisePolicyError(
                f"the noise policy of {source} was never trained (it still acts with w ~ N(0, I): "
                "the run stopped during init_rollout_steps); train longer before evaluating it"
            )
        self.module = module.eval()
        self.base_policy: BasePolicy = module.pi_dp
        path = module.model_config["dsrl"]["base_policy"]["path"]
        self.base_policy_path = None if path is None else Path(path)  # None: a factory-built base policy
        self.noise_shape = tuple(self.base_policy.noise_shape)
        self.explore = explore
        self._generator = torch.Generator().manual_seed(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        how = "explore" if self.explore else "mode"
        noise = act(self.module.pi, obs_t, how, self.module.action_magnitude, generator=self._generator)
        return noise.reshape(len(obs), *self.noise_shape).numpy()


def load_noise_policy(checkpoint: str | os.PathLike, *, explore: bool = False, seed: int = 0) -> NoisePolicy:
    """The noise policy of a DSRL checkpoint directory (from ``save_to_path`` or ``dsrl-ray train``).

    The base policy is rebuilt from the path and sha256 recorded in the checkpoint; a changed
    or missing file is refused. ``explore`` and ``seed``: see :class:`NoisePolicy`.
    """
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(checkpoint)
    module_dir = path / MODULE_SUBDIR
    if not module_dir.is_dir():
        raise FileNotFoundError(
            f"{str(path)!r} is not a DSRL checkpoint directory: {str(module_dir)!r} is missing "
            "(pass the directory written by save_to_path, e.g. RUN_DIR/checkpoints/iter_0000100)"
        )
    module = RLModule.from_checkpoint(os.fspath(module_dir.resolve()))
    if not isinstance(module, DSRLTorchRLModule):
        raise TypeError(f"{str(path)!r} holds a {type(module).__name__}, not a DSRL module")
    return NoisePolicy(module, explore=explore, seed=seed, source=repr(str(path)))
