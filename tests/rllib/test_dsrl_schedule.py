"""The learner's gradient-step schedule in-process (no Ray cluster): the released DSRL-NA block schedule,
Q_W distillation on the actors' stored pairs, and which runners denoise pairs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, WEIGHTS_SEQ_NO

from dsrl_ray.policies import DiffusionArch, DiffusionPolicy
from dsrl_ray.policies.checkpoint import checkpoint_path, normalizer_to_tensors, write_checkpoint
from dsrl_ray.rllib import DSRLConfig
from dsrl_ray.rllib import runner_sync as sync
from dsrl_ray.rllib.episodes import PAIR_VALID
from dsrl_ray.rllib.module import ACT_BASE_NOISE, ACT_NOISE_POLICY, PAIR_EXECUTED, PAIR_NOISE

OBS, ACT, CHUNK = 3, 2, 4
D = ACT * CHUNK
WARM_UP = 8
MODULE = DEFAULT_MODULE_ID
ENVS = 4  # the released run steps 4 envs together: one insert of 4 transitions = one vector step


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory):
    """A randomly initialised tiny DDIM base policy, as a pretrain checkpoint."""
    arch = DiffusionArch(obs_dim=OBS, act_dim=ACT, chunk_len=CHUNK, mlp_dims=(32, 32, 32), time_dim=8,
                         denoising_steps=10, ddim_steps=4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        policy = DiffusionPolicy(arch)
    payload = {"arch": arch.to_dict(), "normalizer": normalizer_to_tensors(policy.normalizer),
               "model": policy.state_dict(), "ema": policy.state_dict(), "step": 0, "dataset_sha256": "random-init"}
    return write_checkpoint(payload, checkpoint_path(tmp_path_factory.mktemp("policy"), 0))


def _config(policy_path, **training) -> DSRLConfig:
    defaults = dict(base_policy_path=str(policy_path), variant="na", hidden_sizes=[16, 16], init_rollout_steps=WARM_UP,
                    train_batch_size_per_learner=8, replay_capacity=500, log_tensorboard=False)
    return DSRLConfig().training(**{**defaults, **training}).debugging(seed=0)


def _learner(config: DSRLConfig):
    spaces = (gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32), gym.spaces.Box(-1.5, 1.5, (D,), np.float32))
    return config.build_learner(spaces={DEFAULT_MODULE_ID: spaces})


def _transitions(learner, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` transitions as a runner ships them: executed chunks and pairs from one batched pi_dp call."""
    module = learner.dsrl_module
    obs = torch.as_tensor(rng.standard_normal((n, OBS)), dtype=torch.float32)
    w = torch.as_tensor(rng.standard_normal((n, D)), dtype=torch.float32)
    executed, pair_noise, pair_executed = module._steering_on(obs.device).flat_with_pairs(obs, w, 4)
    return {"obs": obs.numpy(), "noise": w.numpy(), "executed": executed.numpy(),
            "reward": rng.standard_normal(n).astype(np.float32),
            "next_obs": rng.standard_normal((n, OBS)).astype(np.float32),
            "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool), WEIGHTS_SEQ_NO: np.zeros(n, np.int64),
            PAIR_NOISE: pair_noise.numpy(), PAIR_EXECUTED: pair_executed.numpy(), PAIR_VALID: np.ones(n, bool)}


def _trace_steps(learner) -> list[tuple[str, float, float]]:
    """Record every main step and Q_W step with a checksum of Q_W and of Q_A when it starts."""
    trace: list[tuple[str, float, float]] = []
    module = learner.dsrl_module

    def sums() -> tuple[float, float]:
        with torch.no_grad():
            return (float(sum(p.double().sum() for p in module.qf_w.parameters())),
                    float(sum(p.double().sum() for p in module.qf.parameters())))

    update, q_w_step = learner.update, learner._q_w_step
    learner.update = lambda **kw: (trace.append(("main", *sums())), update(**kw))[1]
    learner._q_w_step = lambda: (trace.append(("q_w", *sums())), q_w_step())[1]
    return trace


@pytest.mark.parametrize("pairs", ["actor", "learner"])
def test_sync_inserts_follow_the_released_block_schedule(policy_path, pairs):
    # lift: utd 30 and 10 Q_W steps per vector step of 4 envs = 7.5 and 2.5 per transition.
    learner = _learner(_config(policy_path, utd=7.5, q_w_utd=2.5, q_w_pairs=pairs, check_executed=True))
    trace = _trace_steps(learner)
    rng = np.random.default_rng(0)
    for vector_step in range(1, 6):
        trace.clear()
        transitions = _transitions(learner, ENVS, rng)
        if pairs == "learner":
            transitions = {k: v for k, v in transitions.items() if k not in (PAIR_NOISE, PAIR_EXECUTED, PAIR_VALID)}
        out = learner.insert_and_train(transitions, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: ENVS * vector_step})
        trained = vector_step * ENVS > WARM_UP
        assert [kind for kind, *_ in trace] == (["main"] * 30 + ["q_w"] * 10 if trained else [])
        done = max(0, vector_step - WARM_UP // ENVS)
        assert (learner.limiter.num_updates, learner.q_w_limiter.num_updates, out["owed"]) == (30 * done, 10 * done, 0)
        if trained:
            main, q_w = trace[:30], trace[30:]
            assert len({q_w_sum for _, q_w_sum, _ in main}) == 1, "Q_W changed inside the Q_A/actor block"
            assert len({q_a_sum for _, _, q_a_sum in q_w}) == 1, "Q_A changed during the Q_W steps"
            assert len({q_w_sum for _, q_w_sum, _ in q_w}) == 10
    stats = {k: float(v) for k, v in out["metrics"][DEFAULT_MODULE_ID].items()}
    assert np.isfinite(stats["qf_w_loss"]) and stats["executed_max_abs_err"] < 1e-5
    if pairs == "actor":
        assert stats["pair_max_abs_err"] < 1e-5


def test_interleaved_distillation_uses_stored_pairs_and_skips_offline_rows(policy_path):
    learner = _learner(_config(policy_path, utd=2, check_executed=True))  # q_w_utd None: one Q_W step per step
    rng = np.random.default_rng(1)
    pair_fields = (PAIR_NOISE, PAIR_EXECUTED, PAIR_VALID)
    offline = {k: v for k, v in _transitions(learner, 6, rng).items() if k not in pair_fields}
    offline["noise"][:] = np.nan
    learner.preload(offline)
    stored = learner.replay.storage()
    assert not stored[PAIR_VALID].any() and np.isnan(stored[PAIR_NOISE]).all()
    for i in range(4):
        out = learner.insert_and_train(_transitions(learner, ENVS, rng), timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: i})
    assert learner.q_w_limiter is None and learner.limiter.num_updates == 2 * (4 * ENVS - WARM_UP)
    stats = {k: float(v) for k, v in out["metrics"][DEFAULT_MODULE_ID].items()}
    assert np.isfinite(stats["qf_w_loss"]) and stats["pair_max_abs_err"] < 1e-5
    assert learner.replay.storage()[PAIR_VALID].sum() == 4 * ENVS


def test_only_training_runners_of_na_with_actor_pairs_denoise_pairs(policy_path):
    config = _config(policy_path, aliasing_pairs=3)
    assert config.runner_aliasing_pairs == 3
    assert config.get_evaluation_config_object().runner_aliasing_pairs == 0
    assert _config(policy_path, q_w_pairs="learner").runner_aliasing_pairs == 0
    assert _config(policy_path, variant="sac").runner_aliasing_pairs == 0
    with pytest.raises(ValueError, match="aliasing_pairs=0; q_w_pairs='actor' needs at least 1"):
        _config(policy_path, aliasing_pairs=0).validate()
    with pytest.raises(ValueError, match="q_w_pairs='both'"):
        _config(policy_path, q_w_pairs="both").validate()


def test_fused_gradient_path_keeps_rllibs_semantics(policy_path):
    learner = _learner(_config(policy_path, tau=0.25))
    module = learner.dsrl_module
    learner.insert_and_train(_transitions(learner, WARM_UP, np.random.default_rng(2)), timesteps={})  # warm-up only
    online_before = [p.detach().clone() for p in module.qf.parameters()]
    target_before = [p.detach().clone() for p in module.target_qf.parameters()]
    learner.after_gradient_based_update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 1})  # the target update alone
    for online, old, new in zip(online_before, target_before, module.target_qf.parameters()):
        torch.testing.assert_close(new, 0.25 * online + 0.75 * old, rtol=0, atol=1e-6)
    # A NaN gradient goes through RLlib's own path: set to zero, so (fresh Adam) that weight stays, none turns NaN.
    refs = learner.filter_param_dict_for_optimizer(sync.learner_params(learner), learner.get_optimizer(MODULE, "qf"))
    grads = {ref: torch.ones_like(p) for ref, p in refs.items()}
    first = next(iter(grads))
    grads[first] = torch.full_like(grads[first], float("nan"))
    before = refs[first].detach().clone()
    learner.apply_gradients(grads)
    assert all(torch.isfinite(p).all() for p in module.qf.parameters())
    assert torch.equal(refs[first].detach(), before)
    assert not all(torch.equal(a, b) for a, b in zip(online_before, module.qf.parameters()))  # the others stepped


def test_learning_starts_trains_on_warm_up_data_before_the_noise_policy_acts(policy_path):
    learner = _learner(_config(policy_path, utd=1, q_w_utd=0.5, learning_starts=4, init_rollout_steps=12))
    module, rng = learner.dsrl_module, np.random.default_rng(2)
    seen = []
    for vector_step in range(1, 5):
        out = learner.insert_and_train(_transitions(learner, ENVS, rng),
                                       timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: ENVS * vector_step})
        seen.append((learner.limiter.num_updates, learner.q_w_limiter.num_updates, int(module.acting_source),
                     out["weights"] is not None))
    base, noise = int(ACT_BASE_NOISE), int(ACT_NOISE_POLICY)
    # 4, 8, 12, 16 inserted: steps from the 5th transition on; pi_w acts from the 12th (after 8 steps).
    assert seen == [(0, 0, base, False), (4, 2, base, True), (8, 4, noise, True), (12, 6, noise, True)]


def test_learning_starts_after_the_warm_up_is_refused(policy_path):
    with pytest.raises(ValueError, match=r"learning_starts=20; expected at most init_rollout_steps=8"):
        _config(policy_path, learning_starts=20).validate()
