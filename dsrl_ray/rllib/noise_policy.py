"""A trained noise policy pi_w, loaded from a DSRL checkpoint, as a plain function of observations.

Used to evaluate or film a steered policy outside RLlib: ``evaluate_policy(task, pi_dp, n,
noise_fn=noise_policy)`` runs the frozen base policy on the noise ``pi_w`` chooses.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dsrl_ray.core.noise_policy import act
from dsrl_ray.core.steering import Steering
from dsrl_ray.rllib.module import ACT_BASE_NOISE, DSRLTorchRLModule
from dsrl_ray.policies import BasePolicy

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"
"""Where ``Algorithm.save_to_path`` puts the RLModule inside a checkpoint directory."""


class UntrainedNoisePolicyError(ValueError):
    """A DSRL checkpoint whose noise policy still acts with the base policy's ``w ~ N(0, I)``."""


class NoisePolicy:
    """Steering noise of a trained DSRL module: ``w = action_magnitude * tanh(u)``.

    ``u`` is the actor's mean (deterministic, the default) or, with ``explore=True``, a sample
    of its Gaussian (as the runners act in training) whose standard-normal draws come from each
    row's episode generator, so an episode's noise does not depend on its batch or worker.

    Args:
        module: the DSRL RLModule (its actor ``pi``, noise bound and frozen base policy are kept;
            the module itself is not, so the noise policy pickles cheaply to evaluation workers).
        explore: sample the noise instead of taking the mode.
        source: how an error names the module (e.g. its checkpoint path).

    Calling it with normalised observations ``(B, obs_dim)`` (numpy) and the rows' generators
    returns noise ``(B, chunk_len, act_dim)`` float32, the :data:`~dsrl_ray.eval.rollout.NoiseFn`
    that ``evaluate_policy`` takes: the latent noise of the module's ``noise_mode`` (recorded in the
    checkpoint) as pi_dp receives it, with ``"shared"`` one ``act_dim`` vector at every step.
    """

    def __init__(self, module: DSRLTorchRLModule, *, explore: bool = False, source: str = "this checkpoint") -> None:
        if int(module.acting_source) == ACT_BASE_NOISE:
            raise UntrainedNoisePolicyError(
                f"the noise policy of {source} was never trained (it still acts with w ~ N(0, I): "
                "the run stopped during init_rollout_steps); train longer before evaluating it"
            )
        self.actor = module.pi.eval()
        self.action_magnitude = module.action_magnitude
        self.base_policy: BasePolicy = module.pi_dp
        path = module.model_config["dsrl"]["base_policy"]["path"]
        self.base_policy_path = None if path is None else Path(path)  # None: a factory-built base policy
        self.noise_shape = tuple(self.base_policy.noise_shape)
        self.steering = Steering(self.base_policy, module.noise_mode)  # latent noise -> chunk noise
        self.explore = explore

    def __call__(self, obs: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        eps = None
        if self.explore:
            eps = torch.as_tensor(np.stack([rng.standard_normal(self.actor.action_dim, dtype=np.float32) for rng in rngs]))
        noise = act(self.actor, obs_t, "explore" if self.explore else "mode", self.action_magnitude, eps=eps)
        return self.steering.chunk_noise(noise).numpy()


def noise_policy_digest(checkpoint: str | os.PathLike) -> str:
    """Hex sha256 over the RLModule files of a DSRL checkpoint directory (names and bytes, in name order):
    the identity of the noise policy it holds."""
    from dsrl_ray.policies.spec import file_sha256

    module_dir = Path(checkpoint) / MODULE_SUBDIR
    files = sorted(p for p in module_dir.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"{str(checkpoint)!r} is not a DSRL checkpoint directory: no files in "
                                f"{str(module_dir)!r}")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(module_dir).as_posix()}:{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def load_noise_policy(checkpoint: str | os.PathLike, *, explore: bool = False) -> NoisePolicy:
    """The noise policy of a DSRL checkpoint directory (from ``save_to_path`` or ``dsrl-ray train``).

    The base policy is rebuilt from the path and sha256 recorded in the checkpoint; a changed
    or missing file is refused. ``explore``: see :class:`NoisePolicy`.
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
    return NoisePolicy(module, explore=explore, source=repr(str(path)))
