"""Run one experiment end to end: Ray up, DSRL built, ``train()`` to the env-step budget.

A run directory holds::

    <run_dir>/experiment.yaml      the effective experiment (profile and overrides applied)
    <run_dir>/progress.csv         one row per training iteration (see PROGRESS_COLUMNS)
    <run_dir>/tensorboard/         event files, x-axis = env (chunk) steps
    <run_dir>/checkpoints/iter_N/  the latest checkpoint (``DSRL.from_checkpoint`` /
                                   ``algo.restore_from_path``); older ones are removed
    <run_dir>/checkpoints/best/    with ``best_checkpoint_episodes``: the checkpoint whose last
                                   training episodes scored best (:mod:`dsrl_ray.app.best_checkpoint`)

Checkpoints are written to a temporary directory and renamed into place, so a crash never
leaves a half-written ``iter_N``. ``resume=True`` continues from the latest checkpoint
(progress rows after it are dropped, since those iterations run again).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dsrl_ray.app.best_checkpoint import BestCheckpoint, BestScorer, read_best
from dsrl_ray.envs.tasks import get_task_spec
from dsrl_ray.experiment.schema import Experiment, ExperimentError

PROGRESS_CSV = "progress.csv"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
EXPERIMENT_YAML = "experiment.yaml"
_CHECKPOINT_PREFIX = "iter_"
_PARTIAL_PREFIX = ".partial_"

PROGRESS_COLUMNS = (
    "iteration",
    "env_steps",
    "sim_steps",
    "wall_time_s",
    "episodes",
    "success_rate",
    "episode_return_mean",
    "eval_success_rate",
    "eval_episode_return_mean",
)
"""Columns of ``progress.csv``; a metric an iteration did not report is left empty."""

_RESULT_PATHS: dict[str, tuple[str, ...]] = {
    "env_steps": ("num_env_steps_sampled_lifetime",),
    "sim_steps": ("env_runners", "num_sim_steps_sampled_lifetime"),
    "episodes": ("env_runners", "num_episodes"),
    "success_rate": ("env_runners", "success_rate"),
    "episode_return_mean": ("env_runners", "episode_return_mean"),
    "eval_success_rate": ("evaluation", "env_runners", "success_rate"),
    "eval_episode_return_mean": ("evaluation", "env_runners", "episode_return_mean"),
}


_EVAL_COLUMNS = ("eval_success_rate", "eval_episode_return_mean")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_from_experiment` leaves behind.

    Attributes:
        run_dir: the run directory.
        checkpoint: the final checkpoint directory.
        best: the kept best checkpoint (``None``: ``best_checkpoint_episodes`` unset, or no
            checkpoint had that many training episodes behind it).
        iterations: training iterations done in total (including resumed ones).
        env_steps: env (chunk) steps sampled in total.
        metrics: the last ``progress.csv`` row (``None`` for metrics not reported yet).
    """

    run_dir: Path
    checkpoint: Path
    best: BestCheckpoint | None
    iterations: int
    env_steps: int
    metrics: dict[str, float | None]

    @property
    def chosen_checkpoint(self) -> Path:
        """The checkpoint to evaluate: the best one if kept, else the final one."""
        return self.best.path if self.best is not None else self.checkpoint


def default_run_dir(experiment: Experiment) -> Path:
    """``runs/<task>/dsrl_<variant>`` (plus ``_<profile>`` when a profile is merged in)."""
    name = f"dsrl_{experiment.variant}" + (f"_{experiment.profile}" if experiment.profile else "")
    return Path("runs") / experiment.task / name


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint directory of a run, or ``None``."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    found = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_CHECKPOINT_PREFIX))
    return found[-1] if found else None


def check_run_dir(run_dir: str | os.PathLike, *, resume: bool) -> None:
    """Refuse to start a new run in a directory that already holds one.

    Raises:
        FileExistsError: ``run_dir`` has a ``progress.csv`` or a checkpoint and ``resume`` is false.
    """
    run_dir = Path(run_dir)
    if not resume and (latest_checkpoint(run_dir) is not None or (run_dir / PROGRESS_CSV).exists()):
        raise FileExistsError(
            f"run directory {str(run_dir)!r} already holds a run ({PROGRESS_CSV} or {CHECKPOINTS}/); "
            "expected a new directory: pass --resume to continue it, or choose another --run-dir"
        )


def progress_row(result: Mapping[str, Any], wall_time_s: float) -> dict[str, float | None]:
    """One ``progress.csv`` row from an ``algo.train()`` result (missing or non-finite metrics: ``None``)."""
    row: dict[str, float | None] = {"iteration": _number(result.get("training_iteration"))}
    for column, keys in _RESULT_PATHS.items():
        value: Any = result
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        row[column] = _number(value)
    row["wall_time_s"] = round(wall_time_s, 3)
    return {column: row[column] for column in PROGRESS_COLUMNS}


def train_from_experiment(
    experiment: Experiment,
    run_dir: str | os.PathLike | None = None,
    *,
    address: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train DSRL on ``experiment`` until ``experiment.stop.env_steps`` env steps are sampled.

    Starts a new local Ray instance (``num_cpus = max(2, os.cpu_count())``, no dashboard, workers
    with ``OMP_NUM_THREADS=1``; never one a ``ray start`` left running on this machine) unless
    Ray is already initialised in this process or ``address`` names a cluster to attach to; a
    Ray instance started here is shut down at the end. Checkpoints are saved every
    ``experiment.checkpoint_every`` iterations and at the end.

    Args:
        experiment: the run (overrides such as ``--env-steps`` already applied).
        run_dir: output directory; default :func:`default_run_dir`.
        address: Ray cluster address (e.g. ``"auto"``); ``None`` starts Ray locally.
        resume: continue from the run directory's latest checkpoint, if there is one.
        progress: show a tqdm progress bar (env steps; success, return, eval success).

    Raises:
        FileExistsError: ``run_dir`` already holds a run and ``resume`` is false.
        FileNotFoundError: the base policy does not exist.
        ExperimentError: the experiment asks for GPUs this machine/cluster lacks.
    """
    import ray

    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(experiment)
    check_run_dir(run_dir, resume=resume)
    previous = latest_checkpoint(run_dir)
    config = experiment.to_dsrl_config(tensorboard_dir=run_dir / TENSORBOARD)
    _check_local_gpu(experiment)
    (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    _remove_partial_checkpoints(run_dir / CHECKPOINTS)
    (run_dir / EXPERIMENT_YAML).write_text(experiment.to_yaml(), encoding="utf-8")

    owns_ray = not ray.is_initialized()
    if owns_ray:
        runtime_env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
        if address is not None:
            ray.init(address=address, runtime_env=runtime_env)
        else:
            ray.init(address="local", num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False,
                     runtime_env=runtime_env)
    algo = None
    try:
        import dsrl_ray

        dsrl_ray.register()
        _check_cluster_gpus(experiment)
        algo = config.build_algo()
        if resume and previous is not None:
            algo.restore_from_path(os.fspath(previous.resolve()))
        return _train_loop(algo, experiment, run_dir, previous if resume else None, progress)
    finally:
        if algo is not None:
            logdir = algo.logdir
            algo.stop()
            _remove_if_empty(logdir)
        if owns_ray:
            ray.shutdown()


def _train_loop(algo: Any, experiment: Experiment, run_dir: Path, restored: Path | None, progress: bool) -> TrainResult:
    """``algo.train()`` until the budget; one CSV row per iteration; periodic and final checkpoints."""
    from tqdm import tqdm

    budget = experiment.stop.env_steps
    rows = _read_progress(run_dir / PROGRESS_CSV, up_to=algo.iteration) if restored is not None else []
    wall_offset = float(rows[-1]["wall_time_s"] or 0.0) if rows else 0.0
    env_steps = int(algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"), default=0))
    checkpoint = restored
    saved_at = algo.iteration if restored is not None else None
    scorer = _best_scorer(experiment, run_dir, rows, algo.config.init_rollout_steps)
    start = time.perf_counter()
    with open(run_dir / PROGRESS_CSV, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=PROGRESS_COLUMNS)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        f.flush()
        bar = tqdm(
            total=budget,
            initial=min(env_steps, budget),
            unit="env step",
            desc=f"{experiment.task} DSRL-{experiment.variant.upper()}",
            disable=not progress,
            dynamic_ncols=True,
        )
        last_eval: float | None = None
        with_success = get_task_spec(experiment.task).has_success
        metric = training_metric(experiment.task)
        interval = algo.config.evaluation_interval
        try:
            while env_steps < budget:
                result = algo.train()
                row = progress_row(result, wall_offset + time.perf_counter() - start)
                if not interval or algo.iteration % interval:  # RLlib repeats the last evaluation in later results
                    row.update({column: None for column in _EVAL_COLUMNS})
                writer.writerow({k: _cell(v) for k, v in row.items()})
                f.flush()
                rows.append(row)
                scorer.add(row)
                env_steps = int(row["env_steps"] or env_steps)
                if row[f"eval_{metric}"] is not None:
                    last_eval = row[f"eval_{metric}"]
                bar.update(min(env_steps, budget) - bar.n)
                bar.set_postfix_str(_postfix(row, last_eval, with_success), refresh=True)
                if algo.iteration % experiment.checkpoint_every == 0:
                    checkpoint, saved_at = save_checkpoint(algo, run_dir), algo.iteration
                    scorer.consider(checkpoint, algo.iteration, env_steps)
        finally:
            bar.close()
    if saved_at != algo.iteration or checkpoint is None:
        checkpoint = save_checkpoint(algo, run_dir)
        scorer.consider(checkpoint, algo.iteration, env_steps)
    metrics = dict(rows[-1]) if rows else {column: None for column in PROGRESS_COLUMNS}
    return TrainResult(run_dir=run_dir, checkpoint=checkpoint, best=scorer.best, iterations=algo.iteration,
                       env_steps=env_steps, metrics=metrics)


def training_metric(task: str) -> str:
    """The ``progress.csv`` column a run on ``task`` is judged by: ``success_rate``, or ``episode_return_mean``
    for a task without success."""
    return "success_rate" if get_task_spec(task).has_success else "episode_return_mean"


def _best_scorer(experiment: Experiment, run_dir: Path, rows: list[dict[str, float | None]],
                 warm_up_env_steps: int) -> BestScorer:
    """The best-checkpoint scorer of ``experiment``, fed the progress ``rows`` a resumed run keeps."""
    size = experiment.best_checkpoint_episodes
    scorer = BestScorer(size, training_metric(experiment.task), warm_up_env_steps, read_best(run_dir / CHECKPOINTS) if size else None)
    for row in rows:
        scorer.add(row)
    return scorer

def save_checkpoint(algo: Any, run_dir: str | os.PathLike) -> Path:
    """Save ``algo`` to ``<run_dir>/checkpoints/iter_<N>`` atomically, then remove older checkpoints.

    The state is written to a hidden partial directory first and renamed into place, so every
    ``iter_*`` directory is complete.
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"{_CHECKPOINT_PREFIX}{algo.iteration:07d}"
    partial, final = root / f"{_PARTIAL_PREFIX}{name}", root / name
    shutil.rmtree(partial, ignore_errors=True)
    algo.save_to_path(os.fspath(partial.resolve()))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    for old in root.iterdir():
        if old.is_dir() and old.name.startswith(_CHECKPOINT_PREFIX) and old.name < name:
            shutil.rmtree(old)
    return final


# ---------------------------------------------------------------------------- helpers


def _check_local_gpu(experiment: Experiment) -> None:
    """A learner in this process (``num_learners`` 0) that wants a GPU needs CUDA here."""
    gpus = experiment.learners.num_gpus_per_learner or 0
    if gpus > 0 and not experiment.learners.num_learners:
        import torch

        if torch.cuda.device_count() == 0:
            raise ExperimentError(
                f"learners.num_gpus_per_learner={gpus} in {experiment.source}: the learner runs in this process, "
                "which sees no CUDA GPU; use a GPU machine, `--profile cpu`, or set learners.num_gpus_per_learner: 0"
            )


def _check_cluster_gpus(experiment: Experiment) -> None:
    """Remote learners that want GPUs need that many in the cluster (else Ray waits forever)."""
    import ray

    learners = experiment.learners.num_learners or 0
    needed = learners * (experiment.learners.num_gpus_per_learner or 0)
    available = ray.cluster_resources().get("GPU", 0)
    if needed > available:
        raise ExperimentError(
            f"learners: {learners} x {experiment.learners.num_gpus_per_learner} GPUs in {experiment.source}, "
            f"but the Ray cluster has {available} GPUs; expected at most {available} in total"
        )


def _remove_partial_checkpoints(root: Path) -> None:
    for partial in root.glob(f"{_PARTIAL_PREFIX}*"):
        shutil.rmtree(partial, ignore_errors=True)


def _remove_if_empty(path: str) -> None:
    """RLlib creates an (unused) ``~/ray_results/<timestamp>`` logdir per algorithm; drop it if empty."""
    try:
        os.rmdir(path)
    except OSError:
        pass


def _read_progress(path: Path, *, up_to: int) -> list[dict[str, float | None]]:
    """Rows of an existing ``progress.csv`` with ``iteration <= up_to`` (the ones a restore keeps)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k: _number(v) for k, v in row.items() if k in PROGRESS_COLUMNS} for row in csv.DictReader(f)]
    return [row for row in rows if row.get("iteration") is not None and row["iteration"] <= up_to]


def _number(value: Any) -> float | None:
    """``value`` as a finite number (integral values as ``int``), else ``None``."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() else number


def _cell(value: float | None) -> str:
    return "" if value is None else str(value)


def _postfix(row: Mapping[str, float | None], last_eval: float | None, with_success: bool) -> str:
    """The training bar's text: training success (tasks with success), training return, last evaluation
    (success rate, or return for tasks without success)."""
    parts = []
    shown = (("success", row["success_rate"]),) if with_success else ()
    for label, value in (*shown, ("return", row["episode_return_mean"]), ("eval", last_eval)):
        parts.append(f"{label}={value:.3g}" if value is not None else f"{label}=-")
    return " ".join(parts)
