"""FlatReplay (ring buffer) and SamplesPerInsertLimiter: contents, sampling, exact state round trips."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch

from dsrl_ray.core.replay import REQUIRED_FIELDS, FlatReplay, SamplesPerInsertLimiter

OBS, NOISE, ACT = 3, 4, 4


def make_batch(ids, *, terminated_every=0):
    """Transitions whose every field encodes the integer id, so contents are checkable."""
    ids = np.asarray(ids, dtype=np.float32)
    n = len(ids)
    return {
        "obs": np.repeat(ids[:, None], OBS, axis=1),
        "noise": np.repeat(ids[:, None], NOISE, axis=1) + 0.5,
        "executed": np.repeat(ids[:, None], ACT, axis=1) - 0.5,
        "reward": ids * 10.0,
        "next_obs": np.repeat(ids[:, None], OBS, axis=1) + 1.0,
        "terminated": (ids.astype(int) % terminated_every == 0) if terminated_every else np.zeros(n, bool),
        "truncated": (ids.astype(int) % 2 == 1),
    }


def stored_ids(buf: FlatReplay) -> list[int]:
    return [int(r) // 10 for r in buf.storage()["reward"]]


def test_ring_buffer_wraparound_contents():
    buf = FlatReplay(5, OBS, NOISE, ACT)
    buf.add(make_batch([0, 1, 2]))
    assert (len(buf), buf.ptr, buf.num_added) == (3, 3, 3)
    assert stored_ids(buf) == [0, 1, 2]
    buf.add(make_batch([3, 4, 5, 6]))  # wraps: 3,4 fill rows 3,4; 5,6 overwrite rows 0,1
    assert (len(buf), buf.ptr, buf.num_added) == (5, 2, 7)
    assert stored_ids(buf) == [5, 6, 2, 3, 4]
    st = buf.storage()
    np.testing.assert_array_equal(st["obs"][0], [5, 5, 5])
    np.testing.assert_array_equal(st["noise"][1], [6.5] * NOISE)
    np.testing.assert_array_equal(st["executed"][2], [1.5] * ACT)
    np.testing.assert_array_equal(st["next_obs"][4], [5, 5, 5])
    np.testing.assert_array_equal(st["truncated"], [True, False, False, True, False])
    assert st["obs"].dtype == np.float32 and st["terminated"].dtype == np.bool_


def test_add_more_than_capacity_equals_single_adds():
    big = FlatReplay(4, OBS, NOISE, ACT)
    big.add(make_batch([0]))
    big.add(make_batch(range(1, 11)))  # 10 rows into capacity 4 in one call
    single = FlatReplay(4, OBS, NOISE, ACT)
    for i in range(11):
        single.add(make_batch([i]))
    assert (big.ptr, len(big), big.num_added) == (single.ptr, len(single), single.num_added) == (3, 4, 11)
    for name in REQUIRED_FIELDS:
        np.testing.assert_array_equal(big.storage()[name], single.storage()[name])
    assert stored_ids(big) == [8, 9, 10, 7]


def test_add_accepts_torch_and_empty_batches():
    buf = FlatReplay(4, OBS, NOISE, ACT)
    buf.add({k: torch.as_tensor(v) for k, v in make_batch([1, 2]).items()})
    buf.add(make_batch([]) | {"obs": np.zeros((0, OBS)), "noise": np.zeros((0, NOISE)),
                              "executed": np.zeros((0, ACT)), "next_obs": np.zeros((0, OBS))})
    assert len(buf) == 2 and stored_ids(buf) == [1, 2]


def test_sample_dtypes_devices_and_filled_region_only():
    buf = FlatReplay(100, OBS, NOISE, ACT)
    buf.add(make_batch([7, 8, 9]))
    out = buf.sample(500, np.random.default_rng(0))
    assert set(out) == set(REQUIRED_FIELDS)
    assert out["obs"].shape == (500, OBS) and out["noise"].shape == (500, NOISE)
    assert out["executed"].shape == (500, ACT) and out["reward"].shape == (500,)
    assert out["obs"].dtype == torch.float32 and out["terminated"].dtype == torch.bool
    assert set((out["reward"] / 10).round().int().tolist()) == {7, 8, 9}  # never the empty rows
    # rows stay consistent across fields
    torch.testing.assert_close(out["obs"][:, 0] * 10, out["reward"])
    torch.testing.assert_close(out["next_obs"][:, 0], out["obs"][:, 0] + 1)


def test_sampling_is_uniform_with_replacement():
    buf = FlatReplay(10, OBS, NOISE, ACT)
    buf.add(make_batch(range(10)))
    rng = np.random.default_rng(123)
    ids = np.concatenate([(buf.sample(1000, rng)["reward"].numpy() / 10).round().astype(int) for _ in range(100)])
    freq = np.bincount(ids, minlength=10) / ids.size
    # 100k draws: each frequency within 5 standard errors of 0.1 (se ~ 0.00095)
    assert np.all(np.abs(freq - 0.1) < 0.005), freq
    chi2 = ((np.bincount(ids, minlength=10) - ids.size / 10) ** 2 / (ids.size / 10)).sum()
    assert chi2 < 30.0  # 9 dof; P(chi2 > 30) ~ 4e-4
    # with replacement: a batch larger than the buffer works and repeats rows
    big = buf.sample(50, rng)["reward"]
    assert big.shape == (50,) and len(set(big.tolist())) <= 10


def test_sample_is_deterministic_given_rng_and_own_rng():
    buf = FlatReplay(10, OBS, NOISE, ACT, seed=5)
    buf.add(make_batch(range(10)))
    a = buf.sample(16, np.random.default_rng(1))["reward"]
    b = buf.sample(16, np.random.default_rng(1))["reward"]
    torch.testing.assert_close(a, b)
    c = FlatReplay(10, OBS, NOISE, ACT, seed=5)
    c.add(make_batch(range(10)))
    torch.testing.assert_close(buf.sample(16)["reward"], c.sample(16)["reward"])


def test_state_round_trip_is_bit_exact():
    buf = FlatReplay(6, OBS, NOISE, ACT, seed=11, extra_fields={"weights_seq_no": ((), np.int64)})
    rng = np.random.default_rng(0)
    for start in (0, 4, 9):  # wraps once
        b = make_batch(range(start, start + 4))
        b = {k: (v + rng.standard_normal(v.shape).astype(np.float32) if v.dtype == np.float32 else v) for k, v in b.items()}
        buf.add(b | {"weights_seq_no": np.arange(start, start + 4)})
    buf.sample(3)  # advance the owned rng
    state = pickle.loads(pickle.dumps(buf.state_dict()))

    clone = FlatReplay(6, OBS, NOISE, ACT, seed=999, extra_fields={"weights_seq_no": ((), np.int64)})
    clone.load_state_dict(state)
    assert (clone.ptr, len(clone), clone.num_added) == (buf.ptr, len(buf), buf.num_added)
    for name in buf.fields:
        assert clone.storage()[name].tobytes() == buf.storage()[name].tobytes()
    # same future: next samples from the owned rng and next writes agree exactly
    for x, y in zip(buf.sample(32).values(), clone.sample(32).values()):
        assert torch.equal(x, y)
    more = make_batch([20, 21, 22]) | {"weights_seq_no": np.array([20, 21, 22])}
    buf.add(more)
    clone.add(more)
    for name in buf.fields:
        assert clone.storage()[name].tobytes() == buf.storage()[name].tobytes()


def test_state_round_trip_partially_filled_buffer():
    buf = FlatReplay(8, OBS, NOISE, ACT)
    buf.add(make_batch([1, 2, 3]))
    clone = FlatReplay(8, OBS, NOISE, ACT)
    clone.add(make_batch(range(8)))  # dirty rows must be cleared by load_state_dict
    clone.load_state_dict(buf.state_dict())
    assert len(clone) == 3 and stored_ids(clone) == [1, 2, 3]
    assert np.all(clone._data["obs"][3:] == 0)


def test_load_state_dict_rejects_other_layout():
    state = FlatReplay(8, OBS, NOISE, ACT).state_dict()
    with pytest.raises(ValueError, match="layout mismatch"):
        FlatReplay(9, OBS, NOISE, ACT).load_state_dict(state)
    with pytest.raises(ValueError, match="layout mismatch"):
        FlatReplay(8, OBS, NOISE + 1, ACT).load_state_dict(state)


@pytest.mark.parametrize(
    "field, bad, pattern",
    [
        ("obs", np.zeros((2, OBS + 1)), r"field 'obs' has shape \(2, 4\); expected \(N, 3\)"),
        ("noise", np.zeros((2,)), r"field 'noise' has shape \(2,\); expected \(N, 4\)"),
        ("executed", np.zeros((2, 2, 2)), r"field 'executed'"),
        ("reward", np.zeros((2, 1)), r"field 'reward' has shape \(2, 1\); expected \(N\)"),
        ("next_obs", np.zeros((3, OBS)), r"'next_obs' has 3 rows but earlier fields have 2"),
        ("terminated", np.array([0.0, 0.5]), r"'terminated' must be boolean"),
    ],
)
def test_add_rejects_wrong_shapes(field, bad, pattern):
    buf = FlatReplay(4, OBS, NOISE, ACT)
    with pytest.raises(ValueError, match=pattern):
        buf.add(make_batch([0, 1]) | {field: bad})
    assert len(buf) == 0 and buf.num_added == 0  # nothing half-written


def test_add_rejects_missing_or_unknown_fields():
    buf = FlatReplay(4, OBS, NOISE, ACT)
    b = make_batch([0])
    del b["executed"]
    with pytest.raises(KeyError, match="missing field"):
        buf.add(b)
    with pytest.raises(KeyError, match="unknown field"):
        buf.add(make_batch([0]) | {"foo": np.zeros(1)})
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)


# --------------------------------------------------------------------------- limiter
def test_limiter_scripted_sequence_integer_utd():
    lim = SamplesPerInsertLimiter(utd=2, min_size=4)
    assert lim.on_insert(3) == 0  # warm-up
    assert lim.on_insert(2) == 2  # 5 inserted, 1 counted
    lim.on_update(2)
    assert lim.steps_owed() == 0
    assert lim.on_insert(1) == 2
    lim.on_update(1)
    assert lim.steps_owed() == 1
    assert lim.on_insert(10) == 21
    with pytest.raises(ValueError, match="only 21 are owed"):
        lim.on_update(22)
    lim.on_update(21)
    assert (lim.num_inserted, lim.num_updates, lim.steps_owed()) == (16, 24, 0)
    assert lim.num_updates == 2 * (lim.num_inserted - lim.min_size)


def test_limiter_fractional_utd_and_batching_invariance():
    one_by_one = SamplesPerInsertLimiter(utd=0.4, min_size=0)
    owed = []
    for _ in range(10):
        owed.append(one_by_one.on_insert(1))
    assert owed == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4]  # floor(0.4 * n)
    batched = SamplesPerInsertLimiter(utd=0.4, min_size=0)
    assert batched.on_insert(10) == 4
    # exact arithmetic: no drift after many inserts
    lim = SamplesPerInsertLimiter(utd=0.1)
    for _ in range(10_000):
        lim.on_insert(1)
    assert lim.steps_owed() == 1000


def test_limiter_count_warmup():
    lim = SamplesPerInsertLimiter(utd=20, min_size=100, count_warmup=True)
    assert lim.on_insert(99) == 0
    assert lim.on_insert(1) == 2000  # the whole warm-up is credited at once
    no_credit = SamplesPerInsertLimiter(utd=20, min_size=100)
    no_credit.on_insert(100)
    assert no_credit.steps_owed() == 0 and no_credit.on_insert(1) == 20


@pytest.mark.parametrize("utd, min_size, count_warmup", [(2, 4, False), (0.4, 3, False), (3, 5, True), (0.25, 0, True)])
def test_limiter_insert_headroom_matches_brute_force(utd, min_size, count_warmup):
    lim = SamplesPerInsertLimiter(utd=utd, min_size=min_size, count_warmup=count_warmup)
    for step in range(12):
        for backlog in range(0, 7):
            headroom = lim.insert_headroom(backlog)
            probe = SamplesPerInsertLimiter(utd=utd, min_size=min_size, count_warmup=count_warmup)
            probe.load_state_dict(lim.state_dict())
            probe.on_insert(headroom)
            assert probe.steps_owed() <= max(backlog, lim.steps_owed())
            probe.on_insert(1)
            assert probe.steps_owed() > backlog or headroom == 0
        lim.on_insert(step % 3)
        lim.on_update(min(lim.steps_owed(), 1))
    assert SamplesPerInsertLimiter(utd=0).insert_headroom(0) == sys.maxsize


def test_limiter_state_round_trip():
    lim = SamplesPerInsertLimiter(utd=0.3, min_size=7, count_warmup=True)
    lim.on_insert(20)
    lim.on_update(3)
    clone = SamplesPerInsertLimiter(utd=5)
    clone.load_state_dict(pickle.loads(pickle.dumps(lim.state_dict())))
    assert clone.state_dict() == lim.state_dict()
    for n in (1, 4, 9):
        assert clone.on_insert(n) == lim.on_insert(n)


def test_limiter_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SamplesPerInsertLimiter(utd=-1)
    with pytest.raises(ValueError):
        SamplesPerInsertLimiter(utd=1, min_size=-1)
    lim = SamplesPerInsertLimiter(utd=1)
    with pytest.raises(ValueError):
        lim.on_insert(-1)
    with pytest.raises(ValueError):
        lim.on_update(-1)


def test_sample_where_draws_only_flagged_rows_and_follows_overwrites():
    buf = FlatReplay(6, OBS, NOISE, ACT, extra_fields={"pair_valid": ((), np.bool_)}, seed=0)
    buf.add({**make_batch([0, 1, 2, 3]), "pair_valid": np.array([False, True, False, True])})
    ids = {int(r) // 10 for r in buf.sample(200, where="pair_valid")["reward"]}
    assert ids == {1, 3}
    buf.add({**make_batch([4, 5, 6]), "pair_valid": np.array([True, False, True])})  # 6 overwrites row 0 (id 0)
    np.testing.assert_array_equal(buf.rows_where("pair_valid"), [0, 1, 3, 4])
    ids = {int(r) // 10 for r in buf.sample(400, where="pair_valid")["reward"]}
    assert ids == {1, 3, 4, 6}
    only = buf.sample(3, fields=("obs", "pair_valid"), where="pair_valid")
    assert set(only) == {"obs", "pair_valid"} and bool(only["pair_valid"].all())
    with pytest.raises(KeyError, match="'reward' is not a scalar boolean field"):
        buf.sample(1, where="reward")
    with pytest.raises(KeyError, match="unknown field"):
        buf.sample(1, fields=("nope",))
    empty = FlatReplay(3, OBS, NOISE, ACT, extra_fields={"pair_valid": ((), np.bool_)})
    empty.add({**make_batch([0]), "pair_valid": np.array([False])})
    with pytest.raises(ValueError, match="no stored row has 'pair_valid' set"):
        empty.sample(1, where="pair_valid")


def test_select_pairs_picks_one_stored_pair_per_row():
    from dsrl_ray.core.replay import select_pairs

    b, k = 300, 4
    pair_noise = torch.arange(b * k, dtype=torch.float32).reshape(b, k, 1).expand(b, k, NOISE).clone()
    pair_executed = -pair_noise[..., :ACT]
    noise, executed = select_pairs(pair_noise, pair_executed, np.random.default_rng(0))
    assert noise.shape == (b, NOISE) and executed.shape == (b, ACT)
    chosen = noise[:, 0].long()
    assert torch.equal(chosen // k, torch.arange(b))  # each row's own pair
    assert torch.equal(executed, -noise[:, :ACT])  # w and its chunk stay together
    assert set((chosen % k).tolist()) == set(range(k))
    with pytest.raises(ValueError, match="same \\(B, K\\)"):
        select_pairs(pair_noise, pair_executed[:, :2], np.random.default_rng(0))
