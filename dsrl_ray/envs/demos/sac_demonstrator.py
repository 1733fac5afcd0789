"""A learned demonstrator for the gym locomotion tasks: plain SAC, trained once and cached.

Nothing can be downloaded here, so the locomotion tasks get demonstrations the way D4RL's
``*-medium`` datasets were made: train SAC on the task until its deterministic evaluation return
reaches the task's ``TaskPreset.demo_target_return`` (about a third of expert return), then roll
that policy out with Gaussian action noise ``sigma``. Training (SAC as DSRL-SAC over the identity
base policy, on our RLlib algorithm, in :mod:`dsrl_ray.rllib.sac_training`) happens only when the
cache has no demonstrator for the same gymnasium id and :class:`SACDemoSettings`; Ray is imported only then.

Cache layout (default root ``~/.cache/dsrl_ray/demonstrators``; ``$DSRL_RAY_CACHE_DIR`` or
``$XDG_CACHE_HOME/dsrl_ray/demonstrators`` replace it)::

    <root>/<gym id>-<key>/actor.pt     TorchScript actor: obs (B, obs_dim) -> dist inputs (B, 2 * act_dim)
    <root>/<gym id>-<key>/meta.json    the settings, the training record, the key's inputs

``<key>`` is the first 16 hex digits of the sha256 of the gymnasium id and every setting
(the seed included); the directory appears atomically, complete or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from dsrl_ray.envs.demos.scripted import ScriptedDemonstrator
from dsrl_ray.envs.make import make_task
from dsrl_ray.envs.tasks import TaskOptions, get_task_spec, task_for_env_name

CACHE_DIR_VARIABLE = "DSRL_RAY_CACHE_DIR"
"""Environment variable that, when set, is the demonstrator cache root."""

_FORMAT = 2
"""Version of the cache layout and of the trainer (2: DSRL-SAC over the identity base policy); part of the key."""


def default_cache_dir() -> Path:
    """The demonstrator cache root: ``$DSRL_RAY_CACHE_DIR``, else ``$XDG_CACHE_HOME`` (default
    ``~/.cache``) ``/dsrl_ray/demonstrators``."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dsrl_ray" / "demonstrators"


@dataclass(frozen=True)
class SACDemoSettings:
    """How the SAC demonstrator of a gym task is trained. All step counts are env steps.

    Attributes:
        target_return: stop as soon as the mean deterministic evaluation return reaches this
            (the task's ``TaskPreset.demo_target_return``).
        max_env_steps: env-step budget; training stops there if the target was not reached.
        hidden_sizes: widths of the actor's and each critic's hidden layers (ReLU).
        actor_lr: Adam learning rate of the actor.
        critic_lr: Adam learning rate of the twin critics.
        alpha_lr: Adam learning rate of the entropy temperature (target entropy ``-act_dim``).
        batch_size: transitions per gradient step.
        utd: gradient steps per env step.
        learning_starts: env steps acted with ``clip(N(0, I), -1, 1)`` before the first gradient step.
        gamma: discount.
        tau: Polyak coefficient of the target critics.
        buffer_capacity: uniform replay capacity in transitions.
        rollout_fragment_length: env steps sampled per training step (``utd`` times as many
            gradient steps follow).
        eval_every: env steps between evaluations.
        eval_episodes: deterministic episodes per evaluation.
        seed: seeds RLlib (networks, sampling, replay) and the evaluation episodes.
    """

    target_return: float
    max_env_steps: int = 150_000
    hidden_sizes: tuple[int, ...] = (256, 256)
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    batch_size: int = 256
    utd: int = 1
    learning_starts: int = 5_000
    gamma: float = 0.99
    tau: float = 0.005
    buffer_capacity: int = 1_000_000
    rollout_fragment_length: int = 8
    eval_every: int = 5_000
    eval_episodes: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        positive = ("max_env_steps", "batch_size", "utd", "buffer_capacity", "rollout_fragment_length",
                    "eval_every", "eval_episodes", "actor_lr", "critic_lr", "alpha_lr", "tau")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"SAC demonstrator setting {name}={getattr(self, name)!r}; expected > 0")
        if self.learning_starts < 0:
            raise ValueError(f"SAC demonstrator setting learning_starts={self.learning_starts}; expected >= 0")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"SAC demonstrator setting gamma={self.gamma}; expected 0 < gamma <= 1")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"SAC demonstrator setting hidden_sizes={self.hidden_sizes}; expected positive widths")

    @classmethod
    def for_task(cls, task_name: str, **overrides: Any) -> SACDemoSettings:
        """The defaults for ``task_name`` (its preset's target return), with ``overrides`` applied.

        Raises:
            ValueError: the task is not a gym task, has no target return, or an override is unknown.
        """
        spec = get_task_spec(task_name)
        target = spec.preset.demo_target_return
        if spec.kind != "gym" or target is None:
            raise ValueError(f"task {task_name!r} has no SAC demonstrator (needs a gym task with "
                             "preset.demo_target_return)")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(f"unknown SAC demonstrator settings {unknown}; expected some of {names}")
        return replace(cls(target_return=float(target)), **overrides)


@dataclass(frozen=True)
class TrainingRecord:
    """What training the demonstrator did.

    Attributes:
        env_steps: env steps sampled in total.
        evaluations: ``[(env_steps, mean deterministic return)]`` of every evaluation, in order.
        reached_target: whether the last evaluation reached the target (else the budget ran out).
        wall_time_s: seconds of training, start of Ray included.
    """

    env_steps: int
    evaluations: list[tuple[int, float]]
    reached_target: bool
    wall_time_s: float

    @property
    def final_return(self) -> float:
        """Mean deterministic return of the saved actor (its last evaluation)."""
        return self.evaluations[-1][1]


def actor_action(actor: torch.nn.Module, obs: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The deterministic SAC action ``(..., act_dim)`` in env units for ``obs`` ``(..., obs_dim)``.

    The actor outputs the squashed-Gaussian inputs ``(mean, log_std)``; the action is
    ``tanh(mean)`` mapped from ``[-1, 1]`` onto ``[low, high]``.
    """
    with torch.no_grad():
        inputs = actor(torch.as_tensor(np.asarray(obs, dtype=np.float32)))
    mean = inputs[..., : len(low)].numpy().astype(np.float64)
    return low + (np.tanh(mean) + 1.0) / 2.0 * (high - low)


def evaluate_actor(task_name: str, actor: torch.nn.Module, episodes: int, seed: int, version: str | None = None
                   ) -> float:
    """Mean undiscounted return of ``episodes`` deterministic episodes (env seeds ``seed .. seed + episodes - 1``)
    on gym task ``task_name`` at gymnasium ``version`` (default: the task's)."""
    env = make_task(task_name, options=TaskOptions(gym_version=version))
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    returns = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(actor_action(actor, obs, low, high))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return float(np.mean(returns))


def cache_entry(gym_id: str, settings: SACDemoSettings, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory of the demonstrator trained on ``gym_id`` with ``settings``."""
    key_inputs = {"format": _FORMAT, "env_id": gym_id, "settings": asdict(settings)}
    key = hashlib.sha256(json.dumps(key_inputs, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{gym_id}-{key}"


def _save(entry: Path, actor: torch.jit.ScriptModule, gym_id: str, settings: SACDemoSettings,
          record: TrainingRecord) -> None:
    """Write ``entry`` atomically: into a temporary sibling directory, renamed into place (if another
    process cached the same demonstrator meanwhile, its entry stays)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        torch.jit.save(actor, str(partial / "actor.pt"))
        meta = {"format": _FORMAT, "env_id": gym_id, "settings": asdict(settings), "record": asdict(record)}
        (partial / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.replace(partial, entry)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if not (isinstance(error, OSError) and (entry / "meta.json").is_file()):
            raise


def _load(entry: Path) -> tuple[torch.jit.ScriptModule, TrainingRecord]:
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    record = meta["record"]
    record["evaluations"] = [tuple(e) for e in record["evaluations"]]
    return torch.jit.load(str(entry / "actor.pt")), TrainingRecord(**record)


class SACDemonstrator(ScriptedDemonstrator):
    """A SAC policy of a gym task as a demonstrator: its deterministic action plus ``sigma * N(0, I)``, clipped.

    Attributes:
        record: how its actor was trained.
        loaded: ``True`` if the actor came from the cache, ``False`` if it was trained just now.
        cache_dir: the cache entry holding the actor.
    """

    def __init__(self, actor: torch.nn.Module, sigma: float, action_low: np.ndarray, action_high: np.ndarray, *,
                 record: TrainingRecord, loaded: bool, cache_dir: Path) -> None:
        super().__init__(sigma, action_low, action_high)
        self._actor = actor
        self.record = record
        self.loaded = loaded
        self.cache_dir = cache_dir

    @classmethod
    def for_env(cls, env: gymnasium.Env, sigma: float) -> SACDemonstrator:
        """The demonstrator of the gym task ``env`` (from ``make_task``) is built on, with the task's
        default :class:`SACDemoSettings`, from the default cache (trained there first if missing)."""
        gym_id = env.spec.id if env.spec is not None else ""
        env_name, _, version = gym_id.rpartition("-")
        spec = task_for_env_name(env_name)
        if spec is None or spec.kind != "gym":
            raise ValueError(f"env {gym_id!r} is not one of our gym tasks; the SAC demonstrator needs an env "
                             "from make_task(<gym task>)")
        return cls.load_or_train(spec.name, sigma, version=version)

    @classmethod
    def load_or_train(cls, task_name: str, sigma: float, *, version: str | None = None,
                      settings: SACDemoSettings | None = None, cache_dir: str | os.PathLike | None = None,
                      progress: bool = True) -> SACDemonstrator:
        """The demonstrator of gym task ``task_name`` from the cache; trained (SAC) and cached if missing.

        Args:
            task_name: a gym task with ``preset.demo_target_return``.
            sigma: action-noise standard deviation, in env action units.
            version: gymnasium model version (``"v4"``, ``"v5"``; default: the task's); part of the cache key.
            settings: training settings (default: :meth:`SACDemoSettings.for_task`); part of the cache key.
            cache_dir: the cache root (default: :func:`default_cache_dir`).
            progress: show a progress bar while training (env steps, mean returns).
        """
        settings = settings or SACDemoSettings.for_task(task_name)
        options = TaskOptions(gym_version=version).for_task(get_task_spec(task_name))
        gym_id = get_task_spec(task_name).gym_id(options.gym_version)
        entry = cache_entry(gym_id, settings, cache_dir)
        loaded = (entry / "meta.json").is_file()
        if loaded:
            actor, record = _load(entry)
        else:
            from dsrl_ray.rllib.sac_training import train_sac  # imports Ray: only when training

            actor, record = train_sac(
                task_name, options.gym_version, settings,
                evaluate=lambda a: evaluate_actor(task_name, a, settings.eval_episodes, settings.seed,
                                                  options.gym_version),
                progress=progress,
            )
            _save(entry, actor, gym_id, settings, record)
        env = make_task(task_name, options=options)
        bounds = env.action_space
        env.close()
        return cls(actor, sigma, bounds.low, bounds.high, record=record, loaded=loaded, cache_dir=entry)

    def _start(self, obs: np.ndarray) -> None:
        """Nothing to set up: the policy is memoryless."""

    def _clean_action(self, obs: np.ndarray) -> np.ndarray:
        return actor_action(self._actor, obs, self._low, self._high)
