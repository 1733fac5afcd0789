"""The main job: scripted demos -> diffusion base policy -> DSRL steering -> base vs steered evaluation.

Everything goes under one run directory::

    RUN_DIR/demos.hdf5             scripted demonstrations (robomimic layout)
    RUN_DIR/base_policy/           BC checkpoints of the diffusion base policy
    RUN_DIR/base_eval.json         base policy, w ~ N(0, I), on episodes seed .. seed + N - 1
                                   (with the digest of the policy it evaluated: reused while it matches)
    RUN_DIR/dsrl/                  DSRL run: progress.csv, tensorboard/, checkpoints/, experiment.yaml
    RUN_DIR/steered_eval.json      steered policy (w sampled from pi_w, as in training) on the same N episodes
                                   (with the digests of both policies: reused while they match)
    RUN_DIR/learning_curve.png     success rate and return vs env steps, base level as a line
    RUN_DIR/episodes.gif           one base and one steered episode side by side (same env seed)
    RUN_DIR/timings.json           seconds each stage took when it did its work
    RUN_DIR/summary.json           the numbers of the table printed at the end

Steps whose output exists are skipped (or resumed, for pretraining and DSRL training), so an
interrupted pipeline continues where it stopped. The summary's wall time is the sum of the
stages' times as measured when each did its work (a resumed stage adds to its stored time), so a
rerun that reuses everything reports the time the results took, not the rerun's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsrl_ray.eval.rollout import EvalResult

@dataclass(frozen=True)
class PipelineSettings:
    """What ``dsrl-ray pipeline`` runs.

    Attributes:
        task: task name (needs a scripted demonstrator: lift, can, twogoal).
        run_dir: output directory.
        seed: seeds demos, pretraining and DSRL; evaluation episodes use ``seed + 1000 + i``.
        episodes: evaluation episodes for base and steered policy (default: the task preset).
        pretrain_steps: BC gradient steps (default: the task preset).
        variant: DSRL variant, ``"na"`` or ``"sac"``.
        config: experiment YAML (default ``configs/<task>_<variant>.yaml``).
        profile: profile of the YAML to merge in (``"cpu"`` by default).
        env_steps: DSRL env-step budget (default: the YAML's).
        num_env_runners: env runners (default: the YAML's).
        progress: show progress bars.
        policy_type: the base policy to pretrain: ``"diffusion"`` (DDIM) or ``"flow"`` (flow matching).
        workers: Ray workers the demo attempts and the evaluation episodes are spread over (None:
            one per CPU of the running Ray; results do not depend on it).
    """

    task: str = "lift"
    run_dir: Path = Path("runs/lift")
    seed: int = 0
    episodes: int | None = None
    pretrain_steps: int | None = None
    variant: str = "na"
    config: Path | None = None
    profile: str | None = "cpu"
    env_steps: int | None = None
    num_env_runners: int | None = None
    progress: bool = True
    policy_type: str = "diffusion"
    workers: int | None = None


def _stage(index: int, text: str) -> None:
    print(f"[{index}/6] {text}", flush=True)


class StageTimes:
    """Seconds each stage took when it did its work, stored in ``path`` (JSON ``{stage: seconds}``) across runs.

    A stage that is skipped because its output exists keeps its stored time; one that runs afresh
    replaces it; one that resumes (pretraining, DSRL training) adds to it, unless the block marks
    itself idle (a resume that found nothing left to do).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}

    @contextmanager
    def measure(self, stage: str, *, resumed: bool = False) -> Iterator[dict[str, bool]]:
        """Time the block as ``stage`` (added to its stored time if ``resumed``) and store it; the block may set
        ``["idle"] = True`` on the dict it gets, and its time is then not counted."""
        from dsrl_ray.policies.atomic import atomic_write_text

        started = time.perf_counter()
        run = {"idle": False}
        yield run
        if run["idle"]:
            return
        before = self.seconds.get(stage, 0.0) if resumed else 0.0
        self.seconds[stage] = round(before + time.perf_counter() - started, 1)
        atomic_write_text(json.dumps(self.seconds, indent=2), self.path)

    def total(self) -> float:
        """Sum of the stored stage times, seconds."""
        return round(sum(self.seconds.values()), 1)


def run_pipeline(settings: PipelineSettings) -> dict:
    """Run all six stages; returns the summary written to ``RUN_DIR/summary.json``."""
    from dsrl_ray.rllib.noise_policy import load_noise_policy, noise_policy_digest
    from dsrl_ray.rllib.demo_workers import collect_demos_on_workers
    from dsrl_ray.rllib.eval_workers import evaluate_on_workers, evaluation_workers
    from dsrl_ray.eval.video import film_episode, side_by_side, write_video
    from dsrl_ray.experiment import CONFIG_DIR, load_experiment
    from dsrl_ray.eval.plots import plot_learning_curve
    from dsrl_ray.eval.summary import evaluation_row, machine_description
    from dsrl_ray.policies import load_policy
    from dsrl_ray.envs.tasks import get_task_spec
    from dsrl_ray.app.pretrain import pretrain_from_dataset
    from dsrl_ray.app.train import PROGRESS_CSV, train_from_experiment
    from dsrl_ray.experiment import flag_overrides
    from dsrl_ray.policies.atomic import atomic_write_text
    from dsrl_ray.policies.spec import file_sha256

    task, run_dir = settings.task, Path(settings.run_dir)
    spec = get_task_spec(task)
    preset = spec.preset
    config_path = settings.config or CONFIG_DIR / f"{task}_{settings.variant}.yaml"
    experiment = load_experiment(config_path, settings.profile)
    if experiment.task != task:
        raise ValueError(f"config {str(config_path)!r} is for task {experiment.task!r}; the pipeline runs {task!r}")
    run_dir.mkdir(parents=True, exist_ok=True)
    times = StageTimes(run_dir / "timings.json")
    episodes = settings.episodes or preset.eval_episodes
    eval_seed = settings.seed + 1000
    workers = evaluation_workers(settings.workers)

    demos = run_dir / "demos.hdf5"
    if demos.exists():
        _stage(1, f"demos: reusing {demos}")
    else:
        _stage(1, f"demos: {preset.n_demos} demos, action noise sigma={preset.demo_sigma}, {workers} workers")
        with times.measure("demos"):
            print(collect_demos_on_workers(task, preset.n_demos, sigma=preset.demo_sigma, seed=settings.seed,
                                           out_path=demos, workers=workers, keep_failures=preset.keep_failures,
                                           progress=settings.progress))

    _stage(2, "pretrain the diffusion base policy (behaviour cloning)")
    base_dir = run_dir / "base_policy"
    with times.measure("pretrain", resumed=base_dir.is_dir() and any(base_dir.iterdir())):
        pretrained = pretrain_from_dataset(dataset=demos, out_dir=base_dir, task=task, steps=settings.pretrain_steps,
                                           seed=settings.seed, progress=settings.progress,
                                           policy_type=settings.policy_type)
    base_policy = load_policy(pretrained.checkpoint)

    eval_workers = min(workers, episodes)
    evaluated = {"base_policy_sha256": file_sha256(pretrained.checkpoint), "seed": eval_seed, "episodes": episodes}
    base_eval = reusable_evaluation(run_dir / "base_eval.json", evaluated)
    if base_eval is not None:
        _stage(3, f"evaluate the base policy: reusing {run_dir / 'base_eval.json'} (same policy and episodes)")
    else:
        _stage(3, f"evaluate the base policy, w ~ N(0, I), {episodes} episodes")
        with times.measure("base_eval"):
            base_eval = evaluate_on_workers(task, base_policy, episodes, seed=eval_seed, workers=eval_workers,
                                            progress=settings.progress)
        atomic_write_text(json.dumps({**base_eval.to_dict(), "evaluated": evaluated}, indent=2), run_dir / "base_eval.json")
    with_success = spec.has_success
    print(base_eval.summary(with_success))

    overrides = flag_overrides(base_policy=pretrained.checkpoint, seed=settings.seed, env_steps=settings.env_steps,
                               num_env_runners=settings.num_env_runners)
    if settings.variant == "na":  # Q_A warm start from the demos (DSRL-NA only: demos have no noise)
        overrides["training"] = {"offline_data_path": str(demos)}
    experiment = experiment.override(overrides, "pipeline settings")
    dsrl_dir = run_dir / "dsrl"
    _stage(4, f"steer: DSRL-{settings.variant.upper()} on {config_path.name}"
              f"{f' (profile {settings.profile})' if settings.profile else ''}, {experiment.stop.env_steps} env steps")
    resume = (dsrl_dir / PROGRESS_CSV).exists()
    steps_before = _env_steps_logged(dsrl_dir / PROGRESS_CSV) if resume else None
    with times.measure("dsrl", resumed=resume) as run:
        trained = train_from_experiment(experiment, dsrl_dir, resume=resume, progress=settings.progress)
        run["idle"] = trained.env_steps == steps_before

    noise_policy = load_noise_policy(trained.chosen_checkpoint, explore=True)
    evaluated = {**evaluated, "noise_policy_sha256": noise_policy_digest(trained.chosen_checkpoint)}
    steered_eval = reusable_evaluation(run_dir / "steered_eval.json", evaluated)
    if steered_eval is not None:
        _stage(5, f"evaluate the steered policy: reusing {run_dir / 'steered_eval.json'} (same policies and episodes)")
    else:
        _stage(5, f"evaluate the steered policy on the same {episodes} episodes (noise sampled from pi_w, as in "
                  f"training){_checkpoint_choice(trained.best)}")
        with times.measure("steered_eval"):
            steered_eval = evaluate_on_workers(task, base_policy, episodes, seed=eval_seed, workers=eval_workers,
                                               noise_fn=noise_policy, progress=settings.progress)
        atomic_write_text(json.dumps({**steered_eval.to_dict(), "evaluated": evaluated}, indent=2),
                          run_dir / "steered_eval.json")
    print(steered_eval.summary(with_success))

    _stage(6, "learning curve and episode video")
    with times.measure("figures"):
        curve = plot_learning_curve(dsrl_dir / PROGRESS_CSV, run_dir / "learning_curve.png",
                                    base_success=base_eval.success_rate, base_return=base_eval.mean_return,
                                    final_success=steered_eval.success_rate, final_return=steered_eval.mean_return,
                                    final_env_steps=trained.best.env_steps if trained.best is not None else None,
                                    title=f"DSRL-{settings.variant.upper()} on {task}", with_success=with_success)
        film_seed = _film_seed(base_eval, steered_eval)
        filmed = [
            film_episode(task, base_policy, seed=film_seed, label="base, w ~ N(0, I)"),
            film_episode(task, base_policy, seed=film_seed, noise_fn=noise_policy, label="steered (DSRL)"),
        ]
        video = write_video(side_by_side(filmed), run_dir / "episodes.gif")

    summary = {
        "task": task,
        "variant": settings.variant,
        "policy_type": settings.policy_type,
        "metric": "success" if with_success else "return",
        "episodes": episodes,
        "base": evaluation_row(base_eval),
        "steered": evaluation_row(steered_eval),
        "dsrl_env_steps": trained.env_steps,
        "dsrl_sim_steps": trained.metrics.get("sim_steps"),
        "wall_time_s": times.total(),
        "stage_times_s": dict(times.seconds),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
        "command": f"dsrl-ray pipeline --task {task} --policy-type {settings.policy_type} --variant {settings.variant}",
        "artifacts": {"learning_curve": str(curve), "video": str(video), "checkpoint": str(trained.chosen_checkpoint),
                      "tensorboard": str(dsrl_dir / "tensorboard")},
    }
    if trained.best is not None:
        summary["evaluated_checkpoint"] = {"iteration": trained.best.iteration, "env_steps": trained.best.env_steps,
                                           f"training_{trained.best.metric}": trained.best.score,
                                           "training_episodes": trained.best.episodes}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(format_summary(summary))
    return summary


def run_all_tasks(settings: list[PipelineSettings], root: Path) -> list[dict]:
    """:func:`run_pipeline` for each task in turn, then ``root/summary.png`` and ``root/summary.md`` over all."""
    summaries = []
    for index, task_settings in enumerate(settings, start=1):
        print(f"\n=== task {index}/{len(settings)}: {task_settings.task} ({task_settings.run_dir}) ===", flush=True)
        summaries.append(run_pipeline(task_settings))
    write_summaries(summaries, root)
    return summaries


def write_summaries(summaries: list[dict], root: Path) -> tuple[Path, Path]:
    """``root/summary.png`` (base vs steered per task, 95 % intervals) and ``root/summary.md`` (one table row
    per task) from per-task pipeline summaries; prints the table. Returns both paths."""
    from dsrl_ray.eval.summary import plot_summaries, summary_table
    from dsrl_ray.policies.atomic import atomic_write_text

    root.mkdir(parents=True, exist_ok=True)
    figure = plot_summaries(summaries, root / "summary.png")
    table = summary_table(summaries)
    markdown = atomic_write_text(table, root / "summary.md")
    print(f"\n{table}\n{figure}\n{markdown}")
    return figure, markdown


def reusable_evaluation(path: Path, evaluated: dict) -> EvalResult | None:
    """The evaluation stored at ``path`` if it was made of the same thing (``evaluated``: the policy's
    digest, first seed and episode count), else ``None`` (no file, an older file without the
    record, or another policy or episode set)."""
    from dsrl_ray.eval.rollout import EvalResult

    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    if stored.get("evaluated") != evaluated:
        return None
    return EvalResult.from_dict(stored)


def _env_steps_logged(progress_csv: Path) -> int | None:
    """Env steps of the last row of a DSRL run's ``progress.csv`` (None: no row yet)."""
    from dsrl_ray.eval.plots import read_progress

    rows = read_progress(progress_csv)
    return int(rows[-1]["env_steps"]) if rows else None


def _checkpoint_choice(best) -> str:
    """Which checkpoint stage 5 evaluates, for its banner."""
    if best is None:
        return ", final checkpoint"
    return (f", best checkpoint: {best.env_steps} env steps, {best.metric} {best.score:.3g} "
            f"over its last {best.episodes} training episodes")


def _film_seed(base_eval, steered_eval) -> int:
    """An evaluation episode the steered policy solved and the base policy did not (else the first)."""
    for base, steered in zip(base_eval.episodes, steered_eval.episodes):
        if steered.success and not base.success:
            return base.seed
    return base_eval.episodes[0].seed


def format_summary(summary: dict) -> str:
    """The result table printed at the end of the pipeline."""
    lines = [f"\n{summary['task']}: base vs steered (DSRL-{summary['variant'].upper()}), "
             f"{summary['episodes']} evaluation episodes each, same env seeds"]
    for name in ("base", "steered"):
        row = summary[name]
        if summary.get("metric", "success") == "success":
            low, high = row["success_ci95"]
            lines.append(f"  {name:8s} success {row['success_rate']:6.1%}  (95% CI {low:.1%}-{high:.1%})  "
                         f"return {row['mean_return']:8.2f}")
        else:
            low, high = row["return_ci95"]
            lines.append(f"  {name:8s} return {row['mean_return']:9.2f}  (95% CI {low:.2f}-{high:.2f})")
    lines.append(f"  DSRL env steps {summary['dsrl_env_steps']}, wall time {summary['wall_time_s'] / 60:.1f} min")
    if "evaluated_checkpoint" in summary:
        lines.append(f"  steered = the best checkpoint by training episodes, at "
                     f"{summary['evaluated_checkpoint']['env_steps']} env steps")
    lines.append(f"  {summary['artifacts']['learning_curve']}\n  {summary['artifacts']['video']}")
    return "\n".join(lines)


def default_run_dir(task: str, policy_type: str = "diffusion") -> Path:
    """``runs/<task>`` under the current directory (``runs/<task>_<policy_type>`` for other base policies)."""
    return Path(os.curdir) / "runs" / (task if policy_type == "diffusion" else f"{task}_{policy_type}")
