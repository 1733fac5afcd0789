"""The best-checkpoint window and the atomic copy of ``checkpoints/best`` (no Ray: plain directories)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsrl_ray.app.best_checkpoint import BEST, BEST_JSON, BestScorer, EpisodeWindow, keep_best, read_best


def test_window_spreads_iteration_means_over_their_episodes():
    window = EpisodeWindow(4)
    window.add(1.0, 1)
    window.add(None, 0)  # an iteration in which no episode ended
    window.add(0.5, 2)
    assert not window.full
    assert window.mean == pytest.approx(2.0 / 3.0)
    window.add(0.0, 3)  # the two oldest of the four leave
    assert window.full
    assert window.mean == pytest.approx((0.5 + 0.0 + 0.0 + 0.0) / 4)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_window_refuses_a_size_that_is_not_a_positive_integer(size):
    with pytest.raises(ValueError, match=f"size={size!r}; expected a positive integer"):
        EpisodeWindow(size)


def test_empty_window_has_no_mean():
    with pytest.raises(ValueError, match="no episode recorded"):
        EpisodeWindow(3).mean


def _checkpoint(root: Path, name: str, content: str) -> Path:
    path = root / name
    (path / "learner").mkdir(parents=True)
    (path / "learner" / "state.pt").write_text(content)
    return path


def test_keep_best_copies_the_checkpoint_with_its_record_and_replaces_the_previous(tmp_path):
    assert read_best(tmp_path) is None
    first = _checkpoint(tmp_path, "iter_0000050", "first")
    kept = keep_best(first, iteration=50, env_steps=1000, metric="success_rate", score=0.4, episodes=20)
    assert kept.path == tmp_path / BEST
    assert (tmp_path / BEST / "learner" / "state.pt").read_text() == "first"
    assert first.is_dir(), "the latest checkpoint stays where it is"

    second = _checkpoint(tmp_path, "iter_0000100", "second")
    keep_best(second, iteration=100, env_steps=2000, metric="success_rate", score=0.55, episodes=20)
    assert (tmp_path / BEST / "learner" / "state.pt").read_text() == "second"
    record = json.loads((tmp_path / BEST / BEST_JSON).read_text())
    assert record == {"iteration": 100, "env_steps": 2000, "metric": "success_rate", "score": 0.55, "episodes": 20}
    assert read_best(tmp_path) == kept.__class__(**record, path=tmp_path / BEST)
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST, "iter_0000050", "iter_0000100"], "no leftovers"


def test_a_copy_that_fails_leaves_the_previous_best_complete(tmp_path, monkeypatch):
    first = _checkpoint(tmp_path, "iter_0000050", "first")
    keep_best(first, iteration=50, env_steps=1000, metric="success_rate", score=0.4, episodes=20)
    second = _checkpoint(tmp_path, "iter_0000100", "second")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dsrl_ray.app.best_checkpoint.shutil.copytree", disk_full)
    with pytest.raises(OSError, match="No space left"):
        keep_best(second, iteration=100, env_steps=2000, metric="success_rate", score=0.9, episodes=20)
    best = read_best(tmp_path)
    assert (best.iteration, best.score) == (50, 0.4)
    assert (tmp_path / BEST / "learner" / "state.pt").read_text() == "first"


def _row(env_steps: int, rate: float | None, episodes: int) -> dict:
    return {"env_steps": env_steps, "success_rate": rate, "episodes": episodes}


def test_scorer_skips_the_warm_up_and_keeps_only_improvements(tmp_path):
    scorer = BestScorer(2, "success_rate", warm_up_env_steps=100)
    scorer.add(_row(100, 1.0, 2))  # warm-up episodes (base noise): never scored
    scorer.add(_row(150, 0.0, 1))
    first = _checkpoint(tmp_path, "iter_0000003", "first")
    scorer.consider(first, 3, 150)
    assert scorer.best is None, "one scored episode does not fill a window of two"
    scorer.add(_row(200, 1.0, 1))
    scorer.consider(first, 4, 200)
    assert (scorer.best.iteration, scorer.best.score) == (4, 0.5)
    scorer.add(_row(250, 0.0, 2))
    scorer.consider(_checkpoint(tmp_path, "iter_0000005", "worse"), 5, 250)
    assert scorer.best.iteration == 4 and (tmp_path / BEST / "learner" / "state.pt").read_text() == "first"


def test_scorer_without_a_window_keeps_nothing(tmp_path):
    scorer = BestScorer(None, "success_rate", warm_up_env_steps=0)
    scorer.add(_row(10, 1.0, 5))
    scorer.consider(_checkpoint(tmp_path, "iter_0000001", "x"), 1, 10)
    assert scorer.best is None and not (tmp_path / BEST).exists()
