"""``DSRL(SAC)``: the actor-learner loop around env runners, one learner and a parameter server.

Data flow per round (sync mode)::

    runners: pull newest weights from the EnvRunnerStateServer, sample (obs, w, a, r, obs')
        -> driver: episodes -> flat transitions (+ per-runner weight lag)
        -> learner.insert_and_train: replay.add, limiter.on_insert, the owed gradient steps
        -> driver: push the new inference-only weights to the server (blocking)

Async mode keeps a sample request in flight on every runner (up to
``max_requests_in_flight_per_env_runner``) and never waits for the learner; transitions
queue on the driver until the learner is free. Dispatching new sample requests pauses
while the learner owes more than ``async_max_backlog`` gradient steps (back-pressure),
and the limiter keeps the update-to-data ratio exact either way.

Fault tolerance (``config.fault_tolerance(restart_failed_env_runners=True)``, RLlib's
default): a runner whose process or node dies is marked unhealthy and Ray restarts its
actor (``max_num_env_runner_restarts`` times), on another node if its own is gone; training
goes on with the healthy runners meanwhile, in both modes. :meth:`DSRL.restore_env_runners`
notices a restarted runner without blocking, loads the learner's current weights into it and
hands it the state-server handle. The replay, the limiter and the weights live in the
learner, so they lose nothing. A simulator error inside an env ends that episode only (see
:class:`~dsrl_ray.envs.chunking.SimulatorError`); the runner keeps sampling.
"""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any

import ray
from ray.exceptions import RayError
from ray.rllib.algorithms.sac.sac import SAC
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP, COMPONENT_RL_MODULE
from ray.rllib.env.env_runner_state_server import EnvRunnerStateServer
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    WEIGHTS_SEQ_NO,
)
from ray.rllib.utils.annotations import override
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from dsrl_ray.core.steering import latent_noise_dim
from dsrl_ray.policies.spec import load_base_policy
from dsrl_ray.rllib.config import DSRLConfig
from dsrl_ray.rllib.env import task_of
from dsrl_ray.rllib import runner_sync as sync
from dsrl_ray.rllib.learner import DSRLTorchLearner
from dsrl_ray.rllib.tensorboard import TensorBoardLogger
from dsrl_ray.rllib.episodes import (
    concat_transitions,
    demos_to_transitions,
    episodes_to_transitions,
    num_transitions,
)
from dsrl_ray.envs import get_task_spec, load_demos

DSRL_METRICS = "dsrl"
_ALGO_STATE = "dsrl_algorithm"


def _insert_and_train(learner: DSRLTorchLearner, **kwargs: Any) -> dict[str, Any]:
    return learner.insert_and_train(**kwargs)


class DSRL(SAC):
    """Diffusion Steering via RL on RLlib (variants ``"sac"`` and ``"na"``); see :class:`DSRLConfig`."""

    config: DSRLConfig

    @classmethod
    @override(SAC)
    def get_default_config(cls) -> DSRLConfig:
        return DSRLConfig()

    # ------------------------------------------------------------------ setup
    @override(SAC)
    def setup(self, config: DSRLConfig) -> None:
        super().setup(config)
        cfg = self.config
        self._server = None
        if cfg.use_env_runner_state_server and self.env_runner_group.num_remote_env_runners() > 0:
            # On the driver's node (it needs no resources there): losing a runner node must not take
            # the weights server with it. A soft affinity was seen to land it on a worker node.
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            server_cls = ray.remote(
                num_cpus=0, max_restarts=-1, max_concurrency=cfg.env_runner_state_server_max_concurrency
            )(EnvRunnerStateServer)
            self._server = server_cls.options(scheduling_strategy=here).remote()
            self.env_runner_group.foreach_env_runner(
                partial(sync.set_state_server, server=self._server), local_env_runner=False
            )
        self._pending: list[dict] = []  # async: transitions waiting for the learner
        self._runner_pings: dict[int, dict[int, ray.ObjectRef]] = {}  # id(group) -> {runner index: ping}
        self._learner_version = 0
        self._learner_owed = 0
        self._grad_steps_lifetime = 0
        self._tb = None
        if cfg.log_tensorboard:
            self._tb = TensorBoardLogger(cfg.tensorboard_dir or os.path.join(self.logdir, "tensorboard"))
        if cfg.offline_data_path is not None:
            self._preload_offline(cfg.offline_data_path)
        self._sync_runners_now()
        self._rate_clock = (time.perf_counter(), 0, 0)

    def _preload_offline(self, path: str) -> None:
        """Put chunked, normalised demos into the learner's replay (DSRL-NA's Q_A warm start)."""
        task = task_of(self.config.env)
        if task is None:
            raise ValueError(f"offline_data_path needs a 'dsrl/<task>' env; got env={self.config.env!r}")
        spec = get_task_spec(task)
        policy = load_base_policy(self.config.base_policy_spec)
        data = load_demos(path, obs_keys=spec.obs_keys)
        noise_dim = latent_noise_dim(policy.chunk_len, policy.act_dim, self.config.noise_mode)
        transitions = demos_to_transitions(data, policy.normalizer, policy.chunk_len, spec.reward_offset, noise_dim)
        sync.learner_results(self.learner_group, self.learner_group.foreach_learner(lambda lrn, t=transitions: lrn.preload(t)))

    # ------------------------------------------------------------------ training
    @override(SAC)
    def training_step(self) -> None:
        if self.config.mode == "async":
            self._training_step_async()
        else:
            self._training_step_sync()
        group = self.env_runner_group
        if group.num_remote_env_runners() > 0:
            self.metrics.log_value((DSRL_METRICS, "healthy_env_runners"), group.num_healthy_remote_workers(), window=1)

    def _training_step_sync(self) -> None:
        """Sample on every runner, insert, train the owed steps, push weights; deterministic given a seed."""
        group = self.env_runner_group
        if group.num_remote_env_runners() == 0:
            results = [sync.sample_with_metrics(self.env_runner)]
        else:
            results = group.foreach_env_runner(
                partial(sync.sample_with_metrics, server=self._server),
                local_env_runner=False,
                timeout_seconds=self.config.sample_timeout_s,
            )
        data = self._receive_samples(results)
        out = sync.learner_results(
            self.learner_group,
            self.learner_group.foreach_learner(
                partial(_insert_and_train, transitions=data, timesteps=self._timesteps(), max_steps=None)
            )
        )[0]
        self._receive_learner_output(out, block=True)

    def _training_step_async(self) -> None:
        """One non-blocking round: top up sample requests, collect samples, feed the learner."""
        cfg = self.config
        group = self.env_runner_group
        deadline = time.perf_counter() + cfg.sample_timeout_s
        received = 0
        while not received and time.perf_counter() < deadline:
            if self._backlog() <= cfg.async_max_backlog:
                group.foreach_env_runner_async(partial(sync.sample_with_metrics, server=self._server), tag="sample")
            ready = group.fetch_ready_async_reqs(tags="sample", timeout_seconds=0.01)
            data = self._receive_samples([result for _, result in ready])
            if data is not None:
                self._pending.append(data)
                received += 1
            self._feed_learner_async()
        self.metrics.log_value((DSRL_METRICS, "pending_transitions"), self._num_pending(), window=1)
        self.metrics.log_value((DSRL_METRICS, "learner_backlog"), self._backlog(), window=1)

    def _feed_learner_async(self) -> None:
        """Send pending transitions (or just owed steps) to an idle learner; collect its results."""
        if not self._pending and self._learner_owed == 0:
            return
        kwargs = dict(timesteps=self._timesteps(), max_steps=self.config.async_max_steps_per_call)
        if self.learner_group.is_local:
            out = sync.local_learner(self.learner_group).insert_and_train(transitions=self._take_pending(), **kwargs)
            self._receive_learner_output(out, block=False)
            return
        manager = sync.learner_actors(self.learner_group)
        if manager.num_outstanding_async_reqs(tag="train") == 0:
            manager.foreach_actor_async(partial(_insert_and_train, transitions=self._take_pending(), **kwargs), tag="train")
        for result in manager.fetch_ready_async_reqs(tags="train", timeout_seconds=0.0).ignore_errors():
            self._receive_learner_output(result.get(), block=False)

    def _take_pending(self) -> dict | None:
        data, self._pending = concat_transitions(self._pending), []
        return data

    def _num_pending(self) -> int:
        return sum(num_transitions(p) for p in self._pending)

    def _backlog(self) -> float:
        """Gradient steps (main and Q_W) the learner owes, counting transitions not yet inserted."""
        cfg = self.config
        per_transition = float(cfg.utd)
        if cfg.variant == "na" and cfg.q_w_utd is not None:
            per_transition += float(cfg.q_w_utd)
        return self._learner_owed + per_transition * self._num_pending()

    def _timesteps(self) -> dict[str, int]:
        steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        return {NUM_ENV_STEPS_SAMPLED_LIFETIME: int(steps)}

    def _receive_samples(self, results: list[tuple[list, dict, int]]) -> dict | None:
        """Aggregate runner metrics, log each runner's weight lag, return the transitions (or None)."""
        if not results:
            return None
        self.metrics.aggregate([metrics for _, metrics, _ in results], key=ENV_RUNNER_RESULTS)
        parts = []
        for episodes, _, index in results:
            data = episodes_to_transitions(episodes)
            if data is None:
                continue
            lag = self._learner_version - int(data[WEIGHTS_SEQ_NO].max())
            self.metrics.log_value((DSRL_METRICS, "runner_version_lag", f"runner_{index}"), lag, window=1)
            self.metrics.log_value(
                (DSRL_METRICS, "runner_transitions_lifetime", f"runner_{index}"), num_transitions(data),
                reduce="lifetime_sum",
            )
            self.metrics.log_value((DSRL_METRICS, "runner_version_lag_max"), lag, reduce="max", window=1)
            parts.append(data)
        return concat_transitions(parts)

    def _receive_learner_output(self, out: dict[str, Any], *, block: bool) -> None:
        self.metrics.aggregate([out["metrics"]], key=LEARNER_RESULTS)
        self._learner_owed = out["owed"]
        self._grad_steps_lifetime = out["grad_steps_lifetime"]
        if out["weights"] is not None:
            self._push_weights(out["weights"], block=block)

    # ------------------------------------------------------------------ weight broadcast
    def _push_weights(self, state: dict[str, Any], *, block: bool) -> None:
        """Publish inference-only weights ``{rl_module, weights_seq_no}``; runners pull them before sampling."""
        self._learner_version = int(state[WEIGHTS_SEQ_NO])
        self.metrics.log_value((DSRL_METRICS, "weights_version"), self._learner_version, window=1)
        message = {COMPONENT_RL_MODULE: ray.put(state[COMPONENT_RL_MODULE]), WEIGHTS_SEQ_NO: self._learner_version}
        if self._server is not None:
            ref = self._server.push.remote(message)
            if block:
                ray.get(ref)
        elif self.env_runner_group.num_remote_env_runners() > 0:
            self.env_runner_group.foreach_env_runner(
                lambda er, m=message: er.set_state(m), local_env_runner=False, timeout_seconds=None if block else 0.0
            )
        if self.env_runner is not None:
            self.env_runner.set_state(message)

    def _learner_weights(self) -> dict[str, Any]:
        """The learner's inference-only module state and its version: ``{rl_module, weights_seq_no}``."""
        state = self.learner_group.get_state(
            components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}", inference_only=True
        )[COMPONENT_LEARNER]
        return {COMPONENT_RL_MODULE: state[COMPONENT_RL_MODULE], WEIGHTS_SEQ_NO: state[WEIGHTS_SEQ_NO]}

    def _sync_runners_now(self) -> None:
        """Blocking: every training/eval runner loads the learner's current weights, whatever its version."""
        state = self._learner_weights()
        ref = ray.put(state)
        for group in (self.env_runner_group, self.eval_env_runner_group):
            if group is not None:
                group.foreach_env_runner(partial(sync.force_weights, state_ref=ref), local_env_runner=True)
        self._push_weights(state, block=True)

    # ------------------------------------------------------------------ results
    @override(SAC)
    def step(self) -> dict[str, Any]:
        """``Algorithm.step`` plus throughput, ``timesteps_total`` = env steps, and TensorBoard."""
        results = super().step()
        now = time.perf_counter()
        env_steps = int(results.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0))
        last_time, last_env, last_grad = self._rate_clock
        elapsed = max(now - last_time, 1e-9)
        results.setdefault(DSRL_METRICS, {}).update(
            {
                "env_steps_per_s": (env_steps - last_env) / elapsed,
                "grad_steps_per_s": (self._grad_steps_lifetime - last_grad) / elapsed,
                "grad_steps_lifetime": self._grad_steps_lifetime,
            }
        )
        self._rate_clock = (now, env_steps, self._grad_steps_lifetime)
        results["timesteps_total"] = env_steps
        if self._tb is not None:
            self._tb.log(results)
        return results

    # ------------------------------------------------------------------ checkpoints
    @override(SAC)
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(_ALGO_STATE, components, not_components):
            state[_ALGO_STATE] = {
                "pending": concat_transitions(self._pending),
                "learner_owed": self._learner_owed,
                "grad_steps_lifetime": self._grad_steps_lifetime,
            }
        return state

    @override(SAC)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if _ALGO_STATE in state:
            algo = state[_ALGO_STATE]
            self._pending = [algo["pending"]] if algo["pending"] is not None else []
            self._learner_owed = algo["learner_owed"]
            self._grad_steps_lifetime = algo["grad_steps_lifetime"]
        if COMPONENT_LEARNER_GROUP in state:
            self._sync_runners_now()

    @override(SAC)
    def restore_from_path(self, path, *args, **kwargs) -> None:
        """Restore, then push the restored weights to every runner before returning."""
        super().restore_from_path(path, *args, **kwargs)
        self._sync_runners_now()

    @override(SAC)
    def restore_env_runners(self, env_runner_group) -> list[int]:
        """Bring restarted runners back into service without ever waiting for the ones still down.

        RLlib's version pings every unhealthy runner and blocks for up to
        ``env_runner_health_probe_timeout_s`` on each call, i.e. on every training iteration:
        a runner whose node is gone (its restart waits for resources) would stall training.
        Here each unhealthy runner has one outstanding ``ping``, checked with a zero timeout. A
        runner that answered (Ray restarted its process, on the same or another node), or one
        RLlib itself marked healthy again, gets the learner's current weights, whatever its
        version, and (training group) the state-server handle, which a new process lacks.

        Returns:
            Indices of the runners brought back by this call.
        """
        manager = sync.runner_actors(env_runner_group)
        pings = self._runner_pings.setdefault(id(env_runner_group), {})
        for index in manager.actor_ids():
            if manager.is_actor_healthy(index):
                pings.pop(index, None)
            elif index not in pings:
                pings[index] = sync.ping(manager, index)
        if pings:
            ready, _ = ray.wait(list(pings.values()), num_returns=len(pings), timeout=0)
            answered = set(ready)
            for index, ref in list(pings.items()):
                if ref not in answered:
                    continue
                del pings[index]
                try:
                    ray.get(ref)
                except RayError:
                    continue  # died again, or out of restarts: pinged again next time
                manager.set_actor_state(index, healthy=True)
        restored = sync.take_restored(manager)
        if not restored:
            return []
        sync.count_restored(self, len(restored))
        server = self._server if env_runner_group is self.env_runner_group else None
        env_runner_group.foreach_env_runner(
            partial(sync.rejoin, state_ref=ray.put(self._learner_weights()), server=server),
            remote_worker_ids=restored,
            local_env_runner=False,
            timeout_seconds=self.config.env_runner_restore_timeout_s,
        )
        self.metrics.log_value((DSRL_METRICS, "env_runners_restored_lifetime"), len(restored), reduce="lifetime_sum")
        return restored

    @override(SAC)
    def cleanup(self) -> None:
        if getattr(self, "_tb", None) is not None:
            self._tb.close()
        if getattr(self, "_server", None) is not None and ray.is_initialized():
            ray.kill(self._server, no_restart=True)  # ours: it would outlive the algorithm (max_restarts=-1)
            self._server = None
        super().cleanup()
