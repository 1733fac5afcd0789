"""`dsrl-ray train` end to end on TwoGoal: a couple of iterations, then a resumed one.

Checks the run directory's contract: atomic latest-only checkpoints plus the best one by the last
training episodes, one progress.csv row per iteration (with evaluation columns on evaluation
iterations), TensorBoard event files, and the effective experiment YAML.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from dsrl_ray.experiment import CONFIG_DIR
from dsrl_ray.app.cli import main
from dsrl_ray.experiment import load_experiment
from dsrl_ray.app.train import PROGRESS_COLUMNS

CONFIG = CONFIG_DIR / "twogoal_na.yaml"


@pytest.fixture(scope="module")
def base_policy(twogoal_run) -> Path:
    """The session's TwoGoal base policy (tests/conftest.py ``twogoal_run``): no second pretraining here."""
    return twogoal_run / "base_policy"


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    """The shipped TwoGoal config with tiny nets, an evaluation every 2 iterations on 2 episodes, and
    the best checkpoint kept by the last 3 training episodes."""
    doc = yaml.safe_load(CONFIG.read_text())
    doc["best_checkpoint_episodes"] = 3
    doc["training"].update(hidden_sizes=[32, 32], init_rollout_steps=50, train_batch_size_per_learner=32)
    doc["evaluation"] = {"interval": 2, "episodes": 2}
    path = tmp_path / "twogoal_tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def read_progress(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "progress.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == PROGRESS_COLUMNS
        return list(reader)


def test_train_writes_checkpoints_progress_and_tensorboard_then_resumes(
    ray_local, base_policy, tiny_config, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    argv = ["train", "--config", str(tiny_config), "--base-policy", str(base_policy), "--run-dir", str(run_dir),
            "--num-env-runners", "1", "--checkpoint-every", "1", "--seed", "3", "--no-progress"]
    main([*argv, "--env-steps", "150"])  # 1 runner x 4 envs x 25 steps: 2 iterations

    rows = read_progress(run_dir)
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    steps = [int(r["env_steps"]) for r in rows]
    assert 0 < steps[0] < steps[1] and steps[1] >= 150
    assert all(r["wall_time_s"] and r["sim_steps"] for r in rows)
    assert rows[0]["eval_success_rate"] == "" and rows[1]["eval_success_rate"] != ""
    assert 0.0 <= float(rows[1]["eval_success_rate"]) <= 1.0

    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["best", "iter_0000002"], "only the latest, complete checkpoint and the best are kept"
    best = json.loads((run_dir / "checkpoints" / "best" / "best.json").read_text())
    scored = [r for r in rows[: best["iteration"]] if int(r["env_steps"]) > 50 and int(r["episodes"] or 0)]  # after warm-up
    episodes = [(float(r["success_rate"]), int(r["episodes"])) for r in scored]
    last_three = [rate for rate, count in episodes for _ in range(count)][-3:]
    assert best["metric"] == "success_rate" and best["episodes"] == 3 and len(last_three) == 3
    assert best["score"] == pytest.approx(sum(last_three) / 3)
    assert (run_dir / "checkpoints" / "best" / "rllib_checkpoint.json").is_file()
    assert (run_dir / "checkpoints" / "iter_0000002" / "rllib_checkpoint.json").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents*"))
    effective = load_experiment(run_dir / "experiment.yaml")
    assert (effective.stop.env_steps, effective.seed, effective.base_policy) == (150, 3, str(base_policy))
    assert "final checkpoint:" in capsys.readouterr().out

    with pytest.raises(SystemExit) as refused:
        main([*argv, "--env-steps", "250"])
    assert refused.value.code == 2 and "--resume" in capsys.readouterr().err

    main([*argv, "--env-steps", "250", "--resume"])
    rows = read_progress(run_dir)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert int(rows[2]["env_steps"]) > steps[1], "the resumed run continues the env-step count"
    assert float(rows[2]["wall_time_s"]) > float(rows[1]["wall_time_s"])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best", "iter_0000003"]
