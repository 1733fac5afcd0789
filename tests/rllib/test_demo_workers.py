"""Demo attempts spread over Ray workers write exactly the one-process file (real Ray tasks, TwoGoal)."""

from __future__ import annotations

import dataclasses

import pytest

from dsrl_ray.envs import collect_demos
from dsrl_ray.envs.demos.collect import run_attempts
from dsrl_ray.rllib.demo_workers import attempts_on_workers, collect_demos_on_workers


def _without_path(summary):
    return dataclasses.replace(summary, out_path="")


@pytest.mark.parametrize("keep_failures", [False, True], ids=["successes only", "failures kept"])
def test_workers_write_the_one_process_file(ray_local, tmp_path, keep_failures):
    here = collect_demos("twogoal", 7, sigma=0.3, seed=3, out_path=tmp_path / "here.hdf5",
                         keep_failures=keep_failures, progress=False)
    spread = collect_demos_on_workers("twogoal", 7, sigma=0.3, seed=3, out_path=tmp_path / "spread.hdf5", workers=2,
                                      keep_failures=keep_failures, progress=False)
    assert _without_path(spread) == _without_path(here)
    assert here.n_attempts > 7 or keep_failures  # TwoGoal's demonstrator ignores the cue: about half succeed


def test_attempts_come_back_in_order_across_shards(ray_local):
    stream = attempts_on_workers("twogoal", sigma=0.3, seed=3, workers=2, shard_size=2)
    spread = [next(stream) for _ in range(5)]
    stream.close()
    here = list(run_attempts("twogoal", range(5), sigma=0.3, seed=3))
    assert [s for _, s in spread] == [s for _, s in here]
    for (a, _), (b, _) in zip(spread, here):
        assert (a.actions == b.actions).all() and (a.rewards == b.rewards).all()


def test_workers_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"demo workers=0; expected at least 1"):
        collect_demos_on_workers("twogoal", 2, sigma=0.3, seed=0, out_path=tmp_path / "x.hdf5", workers=0)
    assert not (tmp_path / "x.hdf5").exists()
