"""Simulator errors end one episode, never a runner: ChunkedEnv, robosuite detection, replay, metrics."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from dsrl_ray.rllib.callbacks import SIM_ERRORS_METRIC
from dsrl_ray.rllib.module import EXECUTED
from dsrl_ray.rllib.episodes import episodes_to_transitions
from dsrl_ray.envs import SIM_ERROR, ChunkedEnv, SimulatorError, make_task
from dsrl_ray.policies.normalizer import Normalizer

WARM_UP = 20  # init_rollout_steps of small_config


class _FailingEnv(gymnasium.Env):
    """Test double: observation ``[t, t]`` after step ``t``; reward ``t``; raises ``error`` on step ``fail_at``."""

    def __init__(self, fail_at: int, error: Exception) -> None:
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.fail_at, self.error, self.t = fail_at, error, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), {"success": False}

    def step(self, action):
        self.t += 1
        if self.t == self.fail_at:
            raise self.error
        return np.full(2, self.t, np.float32), float(self.t), False, False, {"success": False}


def test_chunked_env_truncates_the_episode_at_a_simulator_error():
    env = ChunkedEnv(_FailingEnv(6, SimulatorError("unstable simulation")), 4, Normalizer.identity(2, 1))
    env.reset()
    env.step(np.zeros((4, 1), np.float32))  # steps 1-4
    obs, reward, terminated, truncated, info = env.step(np.zeros((4, 1), np.float32))  # step 5 ok, 6 fails
    assert (terminated, truncated, info[SIM_ERROR], info["env_steps"]) == (False, True, True, 1)
    assert reward == 5.0
    np.testing.assert_array_equal(info["raw_obs"], [5.0, 5.0])  # the last state the simulator reached
    np.testing.assert_allclose(obs, [5.0, 5.0], atol=1e-4)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros((4, 1), np.float32))
    _, info = env.reset()
    np.testing.assert_array_equal(info["raw_obs"], [0.0, 0.0])
    assert SIM_ERROR not in env.step(np.zeros((4, 1), np.float32))[-1]


def test_other_exceptions_are_not_swallowed():
    env = ChunkedEnv(_FailingEnv(2, ValueError("a bug")), 4, Normalizer.identity(2, 1))
    env.reset()
    with pytest.raises(ValueError, match="a bug"):
        env.step(np.zeros((4, 1), np.float32))


def test_the_failed_chunk_never_reaches_the_replay():
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    def episode(sim_error: bool) -> SingleAgentEpisode:
        n = 3
        return SingleAgentEpisode(
            observations=[np.full(2, t, np.float32) for t in range(n + 1)],
            actions=[np.full(4, t, np.float32) for t in range(n)],
            rewards=[float(t) for t in range(n)],
            infos=[{} for _ in range(n)] + [{SIM_ERROR: True} if sim_error else {}],
            extra_model_outputs={EXECUTED: [np.full(4, -t, np.float32) for t in range(n)], WEIGHTS_SEQ_NO: [7] * n},
            truncated=True,
            len_lookback_buffer=0,
        )

    failed = episodes_to_transitions([episode(sim_error=True)])
    assert len(failed["obs"]) == 2  # the third chunk was cut by the simulator error
    np.testing.assert_array_equal(failed["next_obs"][:, 0], [1.0, 2.0])
    np.testing.assert_array_equal(failed["reward"], [0.0, 1.0])
    np.testing.assert_array_equal(failed["executed"][:, 0], [0.0, -1.0])
    assert not failed["truncated"].any() and not failed["terminated"].any()
    plain = episodes_to_transitions([episode(sim_error=False)])
    assert len(plain["obs"]) == 3 and plain["truncated"].tolist() == [False, False, True]


def test_robosuite_instability_is_a_simulator_error():
    env = make_task("lift", seed=0)
    env.reset()
    env.unwrapped.robosuite_env.sim.data.qvel[:] = 1e11  # beyond MuJoCo's limit: it warns and resets its state
    with pytest.raises(SimulatorError, match="unstable simulation"):
        env.step(np.zeros(7))
    env.reset()
    obs, *_ = env.step(np.zeros(7))
    assert np.isfinite(obs).all()
    env.close()


def test_training_goes_on_through_injected_simulator_errors(local_ray, small_config, monkeypatch):
    """Test-only injection: TwoGoal's ``step`` is monkeypatched in this process, so the runner
    must be the driver's own (``num_env_runners=0``); every 23rd simulator step raises."""
    from dsrl_ray.envs import twogoal

    real_step = twogoal.TwoGoalEnv.step
    counts = {"calls": 0, "raised": 0}

    def flaky_step(self, action):
        counts["calls"] += 1
        if counts["calls"] % 23 == 0:
            counts["raised"] += 1
            raise SimulatorError("injected: unstable simulation")
        return real_step(self, action)

    monkeypatch.setattr(twogoal.TwoGoalEnv, "step", flaky_step)
    algo = small_config(runners=0, check_executed=True).build_algo()
    try:
        errors = []
        for _ in range(6):
            result = algo.train()
            err = result["learners"].get("default_policy", {}).get("executed_max_abs_err")
            if err is not None:
                errors.append(float(err))
        assert counts["raised"] >= 5
        assert result["env_runners"][SIM_ERRORS_METRIC] == counts["raised"]
        learner = algo.learner_group._learner  # num_learners=0: the learner lives in this process
        inserted, updates, replay = learner.limiter.num_inserted, learner.limiter.num_updates, len(learner.replay)
        # One chunk step per error was sampled but dropped; everything else trained at the exact ratio.
        assert inserted == replay == result["num_env_steps_sampled_lifetime"] - counts["raised"]
        assert updates == inserted - WARM_UP
        assert errors and max(errors) < 1e-5
    finally:
        algo.stop()
