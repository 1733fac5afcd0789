"""Task registry: the facts of each task, unknown names, gym tasks and packaged env metadata."""

import numpy as np
import pytest

from dsrl_ray.envs import TASKS, get_task_spec, load_env_meta, make_task, task_for_env_name


def test_known_tasks_and_their_facts():
    expected = {
        "lift": (19, 7, 4, 300),
        "can": (23, 7, 4, 300),
        "square": (23, 7, 4, 400),
        "transport": (59, 14, 8, 800),
        "hopper": (11, 3, 4, 1000),
        "walker2d": (17, 6, 4, 1000),
        "halfcheetah": (17, 6, 4, 1000),
        "twogoal": (4, 2, 4, 50),
    }
    assert set(TASKS) == set(expected)
    for name, (obs_dim, act_dim, chunk_len, limit) in expected.items():
        spec = get_task_spec(name)
        facts = (spec.obs_dim, spec.act_dim, spec.chunk_len, spec.max_episode_steps)
        assert facts == (obs_dim, act_dim, chunk_len, limit)
        assert sum(spec.obs_key_dims) == spec.obs_dim
    assert get_task_spec("lift").obs_keys == ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
    assert get_task_spec("transport").obs_keys[3:6] == ("robot1_eef_pos", "robot1_eef_quat", "robot1_gripper_qpos")
    assert [get_task_spec(n).reward_offset for n in ("lift", "twogoal", "hopper")] == [1.0, 1.0, 0.0]


def test_unknown_task_names_the_known_ones():
    for call in (lambda: make_task("pong"), lambda: get_task_spec("pong")):
        with pytest.raises(ValueError, match=r"unknown task 'pong'.*'can'.*'twogoal'"):
            call()


def test_task_for_env_name():
    assert task_for_env_name("PickPlaceCan").name == "can"
    assert task_for_env_name("TwoGoal").name == "twogoal"
    assert task_for_env_name("NoSuchEnv") is None


def test_split_obs_by_key():
    spec = get_task_spec("lift")
    parts = spec.split_obs(np.arange(38.0).reshape(2, 19))
    assert [parts[k].shape for k in spec.obs_keys] == [(2, 3), (2, 4), (2, 2), (2, 10)]
    np.testing.assert_array_equal(parts["object"][1], np.arange(28.0, 38.0))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 19\)"):
        spec.split_obs(np.zeros(18))


@pytest.mark.parametrize("name", ["lift", "can", "square", "transport"])
def test_env_meta_is_packaged(name):
    meta = load_env_meta(name)
    assert meta["env_name"] == get_task_spec(name).env_name
    assert meta["env_kwargs"]["controller_configs"]["type"] == "OSC_POSE"


def test_env_meta_only_for_robomimic_tasks():
    with pytest.raises(ValueError, match="'hopper' is a 'gym' task"):
        load_env_meta("hopper")


@pytest.mark.parametrize("name", ["hopper", "walker2d", "halfcheetah"])
def test_gym_tasks_are_float32_with_success_key_and_limit(name):
    spec = get_task_spec(name)
    env = make_task(name, seed=0)
    obs, info = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (spec.obs_dim,)
    assert info["success"] is False
    obs, reward, terminated, truncated, info = env.step(np.zeros(spec.act_dim, dtype=np.float32))
    assert obs.dtype == np.float32 and isinstance(reward, float) and info["success"] is False
    assert env.spec.max_episode_steps == 1000
    env.close()


def test_gym_task_seed_reproduces_first_reset():
    first = make_task("hopper", seed=7).reset()[0]
    again = make_task("hopper", seed=7).reset()[0]
    np.testing.assert_array_equal(first, again)


def test_render_mode_is_checked():
    with pytest.raises(ValueError, match="render_mode='human'"):
        make_task("twogoal", render_mode="human")
