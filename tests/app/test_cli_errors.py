"""`dsrl-ray` reports bad input as one `error: ...` line with exit status 2 and leaves no partial output.

Each case runs the CLI in-process (`main([...])`) and checks: status 2, exactly one stderr line,
starting with `error: ` and naming the bad value, no traceback, and no file created in the
test's directory. `--debug` shows the traceback instead; an unexpected exception keeps its own.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dsrl_ray.app import cli
from dsrl_ray.app.cli import main
from dsrl_ray.experiment import CONFIG_DIR

GARBAGE = b"\x8c\x13 not a checkpoint \xff\x00" * 64


@pytest.fixture(scope="module")
def base_policy(tmp_path_factory) -> Path:
    """A real (barely trained) TwoGoal base-policy directory: 5 demos, 2 BC steps."""
    out = tmp_path_factory.mktemp("cli_errors_bp")
    main(["demos", "--task", "twogoal", "--n", "5", "--out", str(out / "demos.hdf5")])
    main(["pretrain", "--dataset", str(out / "demos.hdf5"), "--out", str(out / "base_policy"), "--steps", "2",
          "--checkpoint-every", "1"])
    return out / "base_policy"


@pytest.fixture
def work(tmp_path) -> Path:
    """The test's directory with a garbage file (``garbage.bin``) and a YAML with a typo key (``typo.yaml``)."""
    (tmp_path / "garbage.bin").write_bytes(GARBAGE)
    doc = yaml.safe_load((CONFIG_DIR / "twogoal_na.yaml").read_text())
    doc["training"]["utdd"] = 1
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def expect_error(capsys, argv: list[str]) -> str:
    """Run ``dsrl-ray ARGV``; assert status 2 and one ``error: `` line on stderr, no traceback; return the line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# (argv with {work} and {garbage} placeholders, fragments the error line must contain)
CASES = {
    "unknown task": (["demos", "--task", "liftt", "--out", "{work}/x.hdf5"], ["'liftt'", "'lift'", "'twogoal'"]),
    "task without demonstrator": (["demos", "--task", "transport", "--out", "{work}/x.hdf5"],
                                  ["'transport'", "'can'", "'hopper'"]),
    "pipeline of an unknown task": (["pipeline", "--task", "liftt", "--run-dir", "{work}/run"], ["'liftt'"]),
    "demos out is a directory": (["demos", "--task", "twogoal", "--out", "{work}"], ["{work}", "expected a file"]),
    "garbage dataset": (["pretrain", "--dataset", "{garbage}", "--out", "{work}/o"],
                        ["garbage.bin", "not a readable HDF5 file"]),
    "missing dataset": (["pretrain", "--dataset", "{work}/nope.hdf5", "--out", "{work}/o"], ["nope.hdf5"]),
    "missing policy": (["eval", "--policy", "/nonexistent", "--json", "{work}/r.json"], ["'/nonexistent'"]),
    "garbage policy": (["eval", "--policy", "{garbage}", "--json", "{work}/r.json"],
                       ["garbage.bin", "not a readable torch file"]),
    "no policy given": (["eval", "--json", "{work}/r.json"], ["--policy", "--steered"]),
    "no evaluation workers": (["eval", "--policy", "{garbage}", "--workers", "0"], ["--workers 0", "at least 1"]),
    "bad video suffix": (["eval", "--policy", "{garbage}", "--video", "{work}/v.avi"], ["v.avi", ".gif"]),
    "steered is not a checkpoint": (["eval", "--steered", "{work}"], ["not a DSRL checkpoint directory"]),
    "unknown config name": (["train", "--config", "nosuch"], ["'nosuch'", "lift_na"]),
    "missing base policy": (["train", "--config", "lift_na", "--base-policy", "/nonexistent",
                             "--run-dir", "{work}/run"], ["'/nonexistent'"]),
    "typo key": (["train", "--config", "{work}/typo.yaml", "--run-dir", "{work}/run"],
                 ["'training.utdd'", "'training.utd'"]),
    "garbage base policy": (["train", "--config", "twogoal_na", "--base-policy", "{garbage}",
                             "--run-dir", "{work}/new/run"], ["garbage.bin", "not a readable torch file"]),
    "bad flag value": (["train", "--config", "twogoal_na", "--base-policy", "{garbage}", "--num-env-runners", "-1",
                        "--run-dir", "{work}/run"], ["num_env_runners=-1", ">= 0"]),
    "missing workdir": (["train", "--config", "twogoal_na", "--workdir", "{work}/nowhere"], ["nowhere"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_and_no_file(case, work, capsys):
    argv, fragments = CASES[case]
    fill = {"work": str(work), "garbage": str(work / "garbage.bin")}
    before = files_under(work)
    line = expect_error(capsys, [a.format(**fill) for a in argv])
    for fragment in fragments:
        assert fragment.format(**fill) in line
    assert files_under(work) == before


def test_base_policy_mismatch_is_one_error_line(work, capsys):
    doc = yaml.safe_load((CONFIG_DIR / "twogoal_na.yaml").read_text())
    doc.update(base_policy=str(work / "garbage.bin"), base_policy_sha256="0" * 64)
    (work / "pinned.yaml").write_text(yaml.safe_dump(doc))
    before = files_under(work)
    line = expect_error(capsys, ["train", "--config", str(work / "pinned.yaml"), "--run-dir", str(work / "run")])
    assert "garbage.bin" in line and "0" * 64 in line
    assert files_under(work) == before


def test_run_dir_holding_a_run_is_refused(work, capsys):
    (work / "run").mkdir()
    (work / "run" / "progress.csv").write_text("iteration\n1\n")
    before = files_under(work)
    line = expect_error(capsys, ["train", "--config", "twogoal_na", "--base-policy", str(work / "garbage.bin"),
                                 "--run-dir", str(work / "run")])
    assert str(work / "run") in line and "--resume" in line
    assert files_under(work) == before


def test_config_refused_by_dsrl_config_is_one_error_line(base_policy, work, capsys):
    line = expect_error(capsys, ["train", "--config", "twogoal_na", "--profile", "cpu", "--base-policy",
                                 str(base_policy), "--mode", "async", "--num-env-runners", "0",
                                 "--run-dir", str(work / "run")])
    assert "mode='async'" in line and "num_env_runners >= 1" in line
    assert not (work / "run").exists()


def test_unusable_ray_address_is_one_error_line(base_policy, work, capsys):
    import ray

    if ray.is_initialized():
        pytest.skip("Ray already runs in this process; `train` then uses it and ignores --address")
    line = expect_error(capsys, ["train", "--config", "twogoal_na", "--profile", "cpu", "--base-policy",
                                 str(base_policy), "--address", "nonsense", "--run-dir", str(work / "run")])
    assert "--address 'nonsense'" in line and "running Ray cluster" in line
    assert not ray.is_initialized()
    assert not (work / "run").exists()


def test_train_removes_the_run_dir_it_created_when_it_fails_before_an_iteration(work, monkeypatch, capsys):
    from contextlib import nullcontext

    from dsrl_ray.app import train
    from dsrl_ray.experiment import ExperimentError

    def fail_after_writing(experiment, run_dir, **kwargs):
        (Path(run_dir) / "checkpoints").mkdir(parents=True)
        (Path(run_dir) / "progress.csv").write_text("iteration\n")
        raise ExperimentError("the cluster has 0 GPUs; expected at least 1")

    monkeypatch.setattr(cli, "_checked_config", lambda experiment: None)
    monkeypatch.setattr(cli, "_ray_session", lambda address, config: nullcontext())
    monkeypatch.setattr(train, "train_from_experiment", fail_after_writing)
    before = files_under(work)
    argv = ["train", "--config", "twogoal_na", "--base-policy", str(work / "garbage.bin")]
    assert "0 GPUs" in expect_error(capsys, [*argv, "--run-dir", str(work / "new" / "run")])
    assert files_under(work) == before

    def fail_after_an_iteration(experiment, run_dir, **kwargs):
        (Path(run_dir)).mkdir(parents=True)
        (Path(run_dir) / "progress.csv").write_text("iteration\n1\n")
        raise ExperimentError("lost")

    monkeypatch.setattr(train, "train_from_experiment", fail_after_an_iteration)
    expect_error(capsys, [*argv, "--run-dir", str(work / "kept")])
    assert (work / "kept" / "progress.csv").is_file(), "a run that recorded iterations is kept for --resume"


def test_debug_shows_the_traceback(work):
    from dsrl_ray.envs.tasks import UnknownTaskError

    with pytest.raises(UnknownTaskError, match="'liftt'"):
        main(["--debug", "demos", "--task", "liftt", "--out", str(work / "x.hdf5")])


def test_an_unexpected_value_error_is_not_swallowed(work, monkeypatch):
    import dsrl_ray.rllib.demo_workers

    def buggy(*args, **kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(dsrl_ray.rllib.demo_workers, "collect_demos_on_workers", buggy)
    with pytest.raises(ValueError, match="a bug"):
        main(["demos", "--task", "twogoal", "--out", str(work / "x.hdf5")])


def test_task_help_comes_from_the_task_table(monkeypatch, capsys):
    from dsrl_ray.envs.tasks import TASKS

    monkeypatch.setitem(TASKS, "newtask", dataclasses.replace(TASKS["twogoal"], name="newtask"))
    for command in ("demos", "pipeline", "pretrain", "eval"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert "newtask" in capsys.readouterr().out


def test_library_notices_are_dropped_and_other_messages_kept():
    cli.quiet_library_logs()
    cli.quiet_library_logs()  # idempotent: one filter per logger
    sac, deprecation = logging.getLogger("ray.rllib.algorithms.sac.sac"), logging.getLogger("ray._common.deprecation")
    assert len(sac.filters) == 1
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    for logger in (sac, deprecation):
        logger.addHandler(handler)
    try:
        sac.warning("You are running SAC on the new API stack! This is the new default behavior.")
        deprecation.warning("DeprecationWarning: `RLModule(config=...)` has been deprecated.")
        sac.warning("a warning a user should see")
    finally:
        for logger in (sac, deprecation):
            logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["a warning a user should see"]
    module, name = cli.WORKER_SETUP_HOOK.rsplit(".", 1)
    assert getattr(sys.modules[module], name) is cli.quiet_library_logs


def test_real_entry_point_prints_one_error_line(tmp_path):
    from dsrl_ray.envs.tasks import TASKS

    out = tmp_path / "x.hdf5"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dsrl_ray", "demos", "--task", "liftt", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: unknown task 'liftt'; expected one of {sorted(TASKS)}"]
    assert not out.exists()
