"""Both DSRL variants steer the bimodal TwoGoal base policies (about 50 % success) to >= 90 % success.

The flow-matching base policy with the full and with the shared noise (``noise_mode``), and
(``--runslow``) the diffusion base policy with the full noise, whose DSRL-NA steering the
default run checks end to end in ``tests/integration/test_pipeline.py``. Short CI form: small nets, one runner with 4
envs, a budget of at most 4000 latent-action steps, stopping early once the training episodes
succeed. The final number is an evaluation of the deterministic noise policy on 50 fresh episodes.
"""

from __future__ import annotations

import time

import pytest

BUDGET_ENV_STEPS = 4000
EVAL_EPISODES = 50


@pytest.mark.parametrize("variant", ["na", "sac"])
@pytest.mark.parametrize(
    "policy_type, noise_mode",
    [
        # The default run steers the diffusion base policy (DSRL-NA) in tests/integration/test_pipeline.py.
        pytest.param("diffusion", "full", marks=pytest.mark.slow),
        ("flow", "full"),
        ("flow", "shared"),
    ],
)
def test_dsrl_lifts_twogoal_success_to_90_percent(
    ray_local, twogoal_config, request, policy_type, noise_mode, variant, record_property
):
    fixture = "twogoal_policy_path" if policy_type == "diffusion" else "twogoal_flow_policy_path"
    config = twogoal_config(
        runners=1,
        envs=4,
        fragment=25,
        base_policy_path=str(request.getfixturevalue(fixture)),
        variant=variant,
        noise_mode=noise_mode,
        hidden_sizes=[64, 64],
        utd=1,
        initial_alpha=0.1,
        init_rollout_steps=200,
        train_batch_size_per_learner=256,
    ).evaluation(
        evaluation_interval=None,
        evaluation_num_env_runners=1,
        evaluation_duration=EVAL_EPISODES,
        evaluation_duration_unit="episodes",
    )
    algo = config.build_algo()
    start = time.perf_counter()
    try:
        base_success = None
        env_steps = 0
        while env_steps < BUDGET_ENV_STEPS:
            result = algo.train()
            env_steps = int(result["num_env_steps_sampled_lifetime"])
            success = result["env_runners"].get("success_rate")
            if base_success is None and success is not None:
                base_success = success  # episodes of the warm-up: the base policy with w ~ N(0, I)
            if env_steps > 1000 and success is not None and success >= 0.95:
                break
        evaluation = algo.evaluate()["env_runners"]
    finally:
        algo.stop()
    wall = time.perf_counter() - start
    record_property("env_steps", env_steps)
    record_property("wall_s", round(wall, 1))
    print(f"DSRL-{variant} on the {policy_type} base policy, {noise_mode} noise: eval success "
          f"{evaluation['success_rate']:.2f} (warm-up {base_success}) after {env_steps} env steps, {wall:.0f} s")
    assert base_success is not None and base_success <= 0.75
    assert evaluation["num_episodes"] >= EVAL_EPISODES
    assert evaluation["success_rate"] >= 0.9
