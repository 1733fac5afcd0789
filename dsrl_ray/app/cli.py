"""The commands a person types: ``python -m dsrl_ray <command>`` or ``dsrl-ray <command>``.

An error the user can cause and fix (a bad path, an unknown task, an unreadable or ill-formed
dataset or checkpoint, a config error, a base policy that is not the recorded one, a Ray address
that leads nowhere, a run directory that already holds a run) prints one line
``error: <what was wrong and what was expected>`` on stderr and exits with status 2, leaving no
partial output behind; ``dsrl-ray --debug <command>`` shows its traceback instead. The types of
those errors are listed once, in :data:`_ANTICIPATED`; any other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")

EXIT_USER_ERROR = 2
"""Exit status of an anticipated error (argparse uses the same for a bad command line)."""

VIDEO_SUFFIXES = (".gif", ".mp4")

WORKER_SETUP_HOOK = "dsrl_ray.app.cli.quiet_library_logs"
"""Run by every Ray worker that ``train`` or ``pipeline`` starts (``runtime_env["worker_process_setup_hook"]``)."""

_NOISE: dict[str, tuple[str, ...]] = {
    "ray._common.deprecation": ("DeprecationWarning",),  # RLlib calling its own deprecated APIs
    "ray.rllib.algorithms.algorithm_config": ("on the new API stack!",),
    "ray.rllib.algorithms.sac.sac": ("on the new API stack!",),
    "ray.tune.trainable.trainable": ("Trainable.setup took",),
    "ray.tune.utils.util": ("Install gputil",),
    "robosuite_logs": ("private macro file", "setup_macros.py"),
}
"""Logger name -> fragments of the messages the CLI drops: notices a DSRL user cannot act on."""


class CommandError(Exception):
    """A mistake in the command line that the command itself detects (a missing flag, a bad combination)."""


_ANTICIPATED: tuple[tuple[str, str], ...] = (
    ("dsrl_ray.envs.tasks", "UnknownTaskError"),
    ("dsrl_ray.experiment.schema", "ExperimentError"),
    ("dsrl_ray.envs.demos.datasets", "DemoDatasetError"),
    ("dsrl_ray.policies.checkpoint", "PolicyCheckpointError"),
    ("dsrl_ray.policies.spec", "BasePolicyMismatchError"),
    ("dsrl_ray.policies.spec", "BasePolicyFactoryError"),
    ("dsrl_ray.policies.spec", "BasePolicyInterfaceError"),
    ("dsrl_ray.rllib.noise_policy", "UntrainedNoisePolicyError"),
)
"""``(module, class)`` of every dsrl_ray exception that means bad input rather than a bug."""

_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def anticipated_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean bad input: :class:`CommandError`, bad paths, :data:`_ANTICIPATED`.

    A class of :data:`_ANTICIPATED` is looked up only if its module is loaded (an exception of it
    cannot exist otherwise), so reporting an error imports nothing (Ray in particular).
    """
    loaded = tuple(getattr(sys.modules[module], name) for module, name in _ANTICIPATED if module in sys.modules)
    return (CommandError, *_OS_ERRORS, *loaded)


def error_line(err: BaseException) -> str:
    """``err`` as the one line ``error: ...`` (an OS error as ``<reason>: '<path>'``)."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.strerror}: {os.fspath(err.filename)!r}"
    else:
        text = str(err) or type(err).__name__
    return "error: " + " ".join(text.split())


class _DropMessages(logging.Filter):
    """Drops the records whose message contains one of ``fragments``."""

    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def quiet_library_logs() -> None:
    """Drop the library messages of :data:`_NOISE` (RLlib's new-API-stack and deprecation notices, ...).

    Called by :func:`main` (the CLI's own process) and, through :data:`WORKER_SETUP_HOOK`, by
    every Ray worker the CLI starts; importing dsrl_ray changes no logging. Other messages of
    the same loggers still show.
    """
    for name, fragments in _NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(fragments))


def _tasks_help() -> tuple[str, str]:
    """``(every task, the tasks with a demonstrator)``, comma-separated, from the task table."""
    from dsrl_ray.envs.tasks import TASKS, demo_tasks

    return ", ".join(TASKS), ", ".join(demo_tasks())


def _add_demos(sub: argparse._SubParsersAction, demo_tasks: str) -> None:
    p = sub.add_parser(
        "demos",
        help="collect scripted demonstrations into a robomimic-layout HDF5 file",
        description="Run a task's demonstrator with Gaussian action noise of std SIGMA "
        "and write the episodes as robomimic low-dim HDF5 (data/demo_N/obs/<key>, actions, ...). "
        "The gym tasks' demonstrator is a SAC policy trained to the task's target return on first use "
        "(about 30 minutes for Hopper on 2 cores) and cached in ~/.cache/dsrl_ray/demonstrators (or $DSRL_RAY_CACHE_DIR).",
    )
    p.add_argument("--task", default="lift", help=f"a task with a demonstrator: {demo_tasks} (default: lift)")
    p.add_argument("--n", type=int, default=None, help="number of demonstrations to keep (default: the task preset)")
    p.add_argument("--sigma", type=float, default=None, help="action-noise std (default: the task preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-failures", action="store_true", help="also keep episodes that did not succeed")
    p.add_argument("--out", type=Path, required=True, help="output .hdf5 path (written only when complete)")
    p.add_argument("--workers", type=int, default=1,
                   help="episodes run in this many local Ray workers (default 1: in this process; "
                        "the file does not depend on it)")
    p.set_defaults(func=cmd_demos)


def _add_pretrain(sub: argparse._SubParsersAction, tasks: str) -> None:
    p = sub.add_parser(
        "pretrain",
        help="behaviour-clone a diffusion or flow-matching base policy from a robomimic-layout HDF5 dataset",
        description="Train a DPPO-style residual-MLP base policy on a demo dataset: a diffusion policy "
        "(epsilon prediction, cosine schedule, DDIM sampler; the default) or a flow-matching policy "
        "(pi0-style linear path, Euler or midpoint ODE sampler), with EMA. Checkpoints are written "
        "atomically to OUT/ and training resumes from the newest one there (use a new OUT to start afresh).",
    )
    _add_policy_type(p)
    p.add_argument("--dataset", type=Path, required=True, help="robomimic-layout .hdf5 file")
    p.add_argument("--out", type=Path, required=True, help="output directory for checkpoints")
    p.add_argument("--task", default=None,
                   help=f"task the dataset belongs to: {tasks} (default: from the file's env_args)")
    p.add_argument("--steps", type=int, default=None, help="gradient steps (default: the task preset)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the task preset)")
    p.add_argument("--mlp-dims", type=int, nargs="+", default=None, help="hidden widths, e.g. 512 512 512")
    p.add_argument("--time-dim", type=int, default=None)
    p.add_argument("--denoising-steps", type=int, default=None, help="DDPM steps T")
    p.add_argument("--ddim-steps", type=int, default=None, help="DDIM steps K used at sampling time")
    p.add_argument("--sampler", choices=("euler", "midpoint"), default=None, help="flow: ODE integrator (euler)")
    p.add_argument("--flow-steps", type=int, default=None, help="flow: integration steps (10)")
    p.add_argument("--checkpoint-every", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_pretrain)


def _add_eval(sub: argparse._SubParsersAction, tasks: str) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a base policy (w ~ N(0, I)) or a steered DSRL checkpoint for N episodes",
        description="Run a pretrained base policy as deployed (initial noise drawn from N(0, I)), or, with "
        "--steered, the base policy driven by a trained DSRL noise policy, and print the success rate with "
        "its 95%% Wilson interval and the mean return with its 95%% interval. Episode i uses env seed "
        "SEED + i, so two evaluations with the same seed see the same initial states.",
    )
    p.add_argument("--policy", type=Path, default=None,
                   help="base-policy checkpoint from `pretrain`, or its directory (newest checkpoint); "
                   "optional with --steered (the checkpoint names its base policy)")
    p.add_argument("--steered", type=Path, default=None,
                   help="DSRL run directory of `train` (its latest checkpoint) or a checkpoint directory "
                   "(e.g. RUN_DIR/checkpoints/iter_0000100) whose noise policy steers")
    p.add_argument("--deterministic", action="store_true",
                   help="with --steered: use the noise policy's mode instead of sampling it (the default, as in training)")
    p.add_argument("--task", default=None,
                   help=f"task: {tasks} (default: the one stored in the base-policy checkpoint)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--workers", type=int, default=1,
                   help="spread the episodes over this many local Ray workers (results do not depend on it)")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    p.add_argument("--video", type=Path, default=None, help="also film the first episode to this .gif or .mp4")
    p.set_defaults(func=cmd_eval)


def _add_policy_type(p: argparse.ArgumentParser) -> None:
    from dsrl_ray.policies import DEFAULT_POLICY_TYPE, POLICY_TYPES

    p.add_argument("--policy-type", choices=sorted(POLICY_TYPES), default=DEFAULT_POLICY_TYPE,
                   help=f"base policy: diffusion (DDIM) or flow (flow matching); default: {DEFAULT_POLICY_TYPE}")


def _add_pipeline(sub: argparse._SubParsersAction, demo_tasks: str) -> None:
    p = sub.add_parser(
        "pipeline",
        help="demos -> base policy -> DSRL steering -> base vs steered evaluation, under one run directory",
        description="The main job: collect scripted demos with noise, pretrain a diffusion base policy, "
        "evaluate it, steer it with DSRL on local Ray env runners, evaluate the steered policy on the same "
        "episodes, and draw the learning curve (PNG) and a base vs steered episode (GIF). Every artefact "
        "goes under RUN_DIR; steps whose output exists are skipped or resumed.",
    )
    p.add_argument("--task", default="lift",
                   help=f"a task with a demonstrator: {demo_tasks}, or all of them in turn: all (default: lift)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="default: runs/<task> (with --task all: runs/, one directory per task, plus summary.png/.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes for each policy (default: the task preset)")
    p.add_argument("--pretrain-steps", type=int, default=None, help="BC gradient steps (default: the task preset)")
    p.add_argument("--variant", choices=("na", "sac"), default="na", help="DSRL variant (default: na)")
    p.add_argument("--config", type=Path, default=None, help="experiment YAML (default: configs/<task>_<variant>.yaml)")
    p.add_argument("--budget", choices=("cpu", "paper"), default="cpu",
                   help="cpu: the config's cpu profile (2 cores, default); paper: the paper's setting (a GPU)")
    p.add_argument("--env-steps", type=int, default=None, help="DSRL env-step budget (default: the YAML's)")
    p.add_argument("--num-env-runners", type=int, default=None, help="env runners (default: the YAML's)")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray workers for the demos and the evaluation episodes (default: one per CPU; "
                        "results do not depend on it)")
    _add_policy_type(p)
    p.set_defaults(func=cmd_pipeline)


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="one figure and one markdown table over finished pipeline runs",
        description="Read the summary.json of each RUN_DIR (written by `dsrl-ray pipeline`, here or on "
        "other machines) and write OUT/summary.png (base vs steered per task, with 95%% intervals) and "
        "OUT/summary.md (one row per run), as `pipeline --task all` does at its end.",
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="pipeline run directories (or summary.json files)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="where summary.png and summary.md go (default: runs)")
    p.set_defaults(func=cmd_summary)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a base policy with DSRL (Ray/RLlib) from an experiment YAML",
        description="Train DSRL's noise policy on one experiment config (a YAML file, or the name of a "
        "shipped one: <task>_<variant>) until its env-step budget: starts Ray locally (or attaches to "
        "--address, printing what the cluster offers and what the run reserves), shows a progress bar, "
        "and writes RUN_DIR/progress.csv, RUN_DIR/tensorboard/, RUN_DIR/experiment.yaml (the effective "
        "config) and the latest checkpoint under RUN_DIR/checkpoints/. Env steps are latent-action "
        "(chunk) steps. Flags override the YAML. On a cluster: `dsrl-ray train --address auto` on the "
        "head (cluster/train_job.py does exactly that; see docs/cluster.md).",
        epilog="example: dsrl-ray train --config twogoal_na --profile cpu --env-steps 2000",
    )
    p.add_argument("--config", type=Path, required=True, help="experiment YAML or shipped config name, e.g. lift_na")
    p.add_argument("--profile", default=None,
                   help="a profile of the YAML merged over it, e.g. cpu (small nets, short run)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="output directory (default: runs/<task>/dsrl_<variant>[_<profile>])")
    p.add_argument("--base-policy", type=Path, default=None,
                   help="base-policy checkpoint (or pretrain directory) replacing the YAML's base_policy")
    p.add_argument("--env-steps", type=int, default=None,
                   help="env-step budget (stop.env_steps); 1 trains exactly one iteration (a smoke test)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--mode", choices=["sync", "async"], default=None,
                   help="sync: sample, train, repeat (deterministic); async: runners never wait for the learner")
    p.add_argument("--checkpoint-every", type=int, default=None, help="iterations between checkpoints")
    p.add_argument("--address", default=None,
                   help="attach to this Ray cluster instead of starting Ray (auto: the cluster this node "
                   "belongs to); with a named address the token in ~/.ray/auth_token, if any, is presented")
    p.add_argument("--workdir", type=Path, default=None,
                   help="directory relative paths are taken from (default: the current directory)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="a progress bar (default: on)")
    sizing = p.add_argument_group("cluster sizing (docs/cluster.md)")
    sizing.add_argument("--num-env-runners", type=int, default=None, help="env-runner actors sampling in parallel")
    sizing.add_argument("--num-envs-per-env-runner", type=int, default=None,
                        help="envs each runner steps in lockstep (one batched pi_dp call for all)")
    sizing.add_argument("--num-cpus-per-env-runner", type=float, default=None, help="CPUs each runner reserves")
    sizing.add_argument("--num-gpus-per-env-runner", type=float, default=None,
                        help="GPU share per runner for its pi_dp replica, fractions allowed")
    sizing.add_argument("--num-learners", type=int, default=None,
                        help="0: the learner runs in the driver; N: in N learner actors")
    sizing.add_argument("--num-gpus-per-learner", type=float, default=None, help="GPUs for each learner")
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsrl-ray",
        description="DSRL: steer a frozen diffusion policy by learning its initial noise with RL.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of its one-line message")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tasks, demo_tasks = _tasks_help()
    _add_demos(sub, demo_tasks)
    _add_pretrain(sub, tasks)
    _add_eval(sub, tasks)
    _add_pipeline(sub, demo_tasks)
    _add_summary(sub)
    _add_train(sub)
    return parser


def _check_file_output(path: Path | None, flag: str, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse an output file path that cannot be written: a directory, or a suffix not in ``suffixes``."""
    if path is None:
        return
    if path.is_dir():
        raise CommandError(f"{flag} {str(path)!r} is a directory; expected a file path")
    if suffixes and path.suffix.lower() not in suffixes:
        raise CommandError(f"{flag} {str(path)!r} has suffix {path.suffix!r}; expected one of {', '.join(suffixes)}")


def _demo_task_spec(task: str) -> Any:
    """The ``TaskSpec`` of ``task``, which must have a demonstrator."""
    from dsrl_ray.envs.tasks import demo_tasks, get_task_spec

    spec = get_task_spec(task)
    if spec.demonstrator is None:
        raise CommandError(f"--task {task!r} has no demonstrator; expected one of {demo_tasks()}")
    return spec


def cmd_demos(args: argparse.Namespace) -> None:
    from dsrl_ray.rllib.demo_workers import collect_demos_on_workers

    spec = _demo_task_spec(args.task)
    if args.workers < 1:
        raise CommandError(f"--workers {args.workers}; expected at least 1")
    _check_file_output(args.out, "--out")
    with _ray_session(None) if args.workers > 1 else nullcontext():
        summary = collect_demos_on_workers(
            args.task,
            args.n if args.n is not None else spec.preset.n_demos,
            sigma=args.sigma if args.sigma is not None else spec.preset.demo_sigma,
            seed=args.seed,
            out_path=args.out,
            workers=args.workers,
            keep_failures=args.keep_failures or spec.preset.keep_failures,
        )
    print(summary)


_ARCH_FLAGS = {"diffusion": ("denoising_steps", "ddim_steps"), "flow": ("sampler", "flow_steps")}
"""The ``pretrain`` flags that only one policy type has."""


def _check_arch_flags(args: argparse.Namespace) -> None:
    for policy_type, names in _ARCH_FLAGS.items():
        given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]
        if given and args.policy_type != policy_type:
            raise CommandError(f"{', '.join(given)} given with --policy-type {args.policy_type}; "
                               f"expected those only with --policy-type {policy_type}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from dsrl_ray.app.pretrain import pretrain_from_dataset

    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {str(args.out)!r} is a file; expected a directory for the checkpoints")
    _check_arch_flags(args)
    result = pretrain_from_dataset(
        dataset=args.dataset,
        out_dir=args.out,
        task=args.task,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        arch_overrides={
            k: v
            for k, v in dict(
                mlp_dims=tuple(args.mlp_dims) if args.mlp_dims else None,
                time_dim=args.time_dim,
                denoising_steps=args.denoising_steps,
                ddim_steps=args.ddim_steps,
                sampler=args.sampler,
                flow_steps=args.flow_steps,
            ).items()
            if v is not None
        },
        policy_type=args.policy_type,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    print(f"final checkpoint: {result.checkpoint}  (final loss {result.loss_history[-1][1]:.4f})")


def _load_eval_policies(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """``(task, base policy, noise policy or None)`` of an ``eval`` command line."""
    from dsrl_ray.app.pretrain import checkpoint_task
    from dsrl_ray.policies import load_policy
    from dsrl_ray.policies.checkpoint import resolve_policy_path

    if args.policy is None and args.steered is None:
        raise CommandError("eval needs --policy (a base policy) and/or --steered (a DSRL run or checkpoint)")
    noise_fn = None
    if args.steered is not None:
        from dsrl_ray.app.train import latest_checkpoint
        from dsrl_ray.rllib.noise_policy import load_noise_policy

        noise_fn = load_noise_policy(latest_checkpoint(args.steered) or args.steered, explore=not args.deterministic)
    if args.policy is not None:
        path = resolve_policy_path(args.policy)
        policy = load_policy(path)
    else:
        path, policy = noise_fn.base_policy_path, noise_fn.base_policy
    task = args.task or checkpoint_task(path)
    if task is None:
        raise CommandError(f"the base policy {str(path)!r} does not name its task; expected --task")
    return task, policy, noise_fn


def _write_json_atomically(data: Any, path: Path) -> None:
    from dsrl_ray.policies.atomic import atomic_write_text

    atomic_write_text(json.dumps(data, indent=2), path)


def cmd_eval(args: argparse.Namespace) -> None:
    from dsrl_ray.envs.tasks import get_task_spec
    from dsrl_ray.eval.video import film_episode, side_by_side, write_video
    from dsrl_ray.rllib.eval_workers import evaluate_on_workers

    if args.workers < 1:
        raise CommandError(f"--workers {args.workers}; expected at least 1")
    _check_file_output(args.json, "--json")
    _check_file_output(args.video, "--video", VIDEO_SUFFIXES)
    task, policy, noise_fn = _load_eval_policies(args)
    with _ray_session(None) if args.workers > 1 else nullcontext():
        result = evaluate_on_workers(task, policy, args.episodes, seed=args.seed, workers=args.workers,
                                     noise_fn=noise_fn)
    print(result.summary(get_task_spec(task).has_success))
    if args.json:
        _write_json_atomically(result.to_dict(), args.json)
    if args.video:
        label = "steered (DSRL)" if noise_fn is not None else "base, w ~ N(0, I)"
        filmed = film_episode(task, policy, seed=args.seed, noise_fn=noise_fn, label=label)
        print(f"video: {write_video(side_by_side([filmed]), args.video)}")


def cmd_pipeline(args: argparse.Namespace) -> None:
    from dsrl_ray.app.pipeline import PipelineSettings, default_run_dir, run_all_tasks, run_pipeline
    from dsrl_ray.envs.tasks import demo_tasks

    tasks = demo_tasks() if args.task == "all" else [_demo_task_spec(args.task).name]
    if len(tasks) > 1 and args.config is not None:
        raise CommandError(f"--config {str(args.config)!r} with --task all; expected --config only for one task")
    settings = [
        PipelineSettings(
            task=task,
            run_dir=(args.run_dir / task if len(tasks) > 1 else args.run_dir) if args.run_dir
            else default_run_dir(task, args.policy_type),
            seed=args.seed,
            episodes=args.episodes,
            pretrain_steps=args.pretrain_steps,
            variant=args.variant,
            config=args.config,
            profile="cpu" if args.budget == "cpu" else None,
            env_steps=args.env_steps,
            num_env_runners=args.num_env_runners,
            policy_type=args.policy_type,
            workers=args.workers,
        )
        for task in tasks
    ]
    with _ray_session(None):
        if len(settings) == 1:
            run_pipeline(settings[0])
        else:
            run_all_tasks(settings, args.run_dir or Path("runs"))


def cmd_summary(args: argparse.Namespace) -> None:
    from dsrl_ray.app.pipeline import write_summaries
    from dsrl_ray.eval.summary import load_summaries

    write_summaries(load_summaries(args.run_dirs), args.out)


def train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment overrides (YAML nesting) that a ``train`` command line asks for."""
    from dsrl_ray.experiment import flag_overrides

    return flag_overrides(
        base_policy=args.base_policy,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        env_steps=args.env_steps,
        mode=args.mode,
        num_env_runners=args.num_env_runners,
        num_envs_per_env_runner=args.num_envs_per_env_runner,
        num_cpus_per_env_runner=args.num_cpus_per_env_runner,
        num_gpus_per_env_runner=args.num_gpus_per_env_runner,
        num_learners=args.num_learners,
        num_gpus_per_learner=args.num_gpus_per_learner,
    )


def describe_plan(config: Any, resources: dict[str, float], nodes: int) -> str:
    """Two lines: what the cluster offers and what the run (a ``DSRLConfig``) reserves, in Ray CPUs/GPUs."""
    n = config.num_env_runners
    cpus, gpus = float(config.num_cpus_per_env_runner), float(config.num_gpus_per_env_runner)
    where = f"{config.num_learners} learner actor(s)" if config.num_learners else "the driver"
    return (
        f"cluster: {nodes} alive nodes, {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs\n"
        f"run: {n} env runners x ({cpus:g} CPU + {gpus:g} GPU), {config.num_envs_per_env_runner} envs each "
        f"= {n * cpus:g} CPUs, {n * gpus:g} GPUs; learner in {where} with "
        f"{float(config.num_gpus_per_learner):g} GPU each"
    )


def _present_ray_token(address: str | None) -> None:
    """Ray enables token auth by itself only for ``auto``; present ``~/.ray/auth_token`` to a named cluster too.

    Ray reads ``RAY_AUTH_MODE`` when it is first imported, so this runs before any import of Ray.
    """
    if address not in (None, "auto") and (Path.home() / ".ray" / "auth_token").is_file():
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _checked_config(experiment: Any) -> Any:
    """The run's ``DSRLConfig``, validated, with its base policy loaded once (cached for the learner).

    Config and base-policy errors thus surface before Ray starts or a file is written.
    """
    from dsrl_ray.experiment import ExperimentError
    from dsrl_ray.policies.spec import BasePolicyMismatchError, load_base_policy

    config = experiment.to_dsrl_config()
    try:
        config.validate()
    except BasePolicyMismatchError:
        raise
    except ValueError as err:  # how DSRLConfig.validate (and RLlib's) refuses a setting
        raise ExperimentError(f"{err} (in {experiment.source})") from err
    load_base_policy(config.base_policy_spec)
    return config


@contextmanager
def _ray_session(address: str | None, config: Any = None) -> Iterator[None]:
    """Ray for one command: attached to ``address`` or a new local instance; shut down after.

    Attached, it prints what the cluster offers and what ``config`` (a ``DSRLConfig``) reserves.
    An already initialised Ray (e.g. a test's) is used as it is. Workers quiet the same library
    messages as the CLI (:data:`WORKER_SETUP_HOOK`) and run with ``OMP_NUM_THREADS=1``.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    runtime_env = {"env_vars": {"OMP_NUM_THREADS": "1"}, "worker_process_setup_hook": WORKER_SETUP_HOOK}
    if address is None:
        ray.init(address="local", num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False,
                 runtime_env=runtime_env)
    else:
        try:
            ray.init(address=address, runtime_env=runtime_env)
        except (ConnectionError, ValueError, RuntimeError) as err:  # ray.init's errors for a bad address
            raise CommandError(f"--address {address!r}: {err}; expected the address of a running Ray cluster "
                               "(host:port of its head, or auto on one of its nodes)") from err
        nodes = sum(1 for node in ray.nodes() if node["Alive"])
        print(describe_plan(config, ray.cluster_resources(), nodes), flush=True)
    try:
        yield
    finally:
        ray.shutdown()


def _first_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet (``None``: ``path`` exists)."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


@contextmanager
def _removed_unless_started(run_dir: Path) -> Iterator[None]:
    """Remove the directories this ``train`` creates for ``run_dir`` if it fails before recording an iteration."""
    from dsrl_ray.app.train import PROGRESS_CSV

    created = _first_missing(run_dir.absolute())
    try:
        yield
    except BaseException:
        progress = run_dir / PROGRESS_CSV
        rows = len(progress.read_text(encoding="utf-8").splitlines()) - 1 if progress.is_file() else 0
        if created is not None and rows <= 0:
            shutil.rmtree(created, ignore_errors=True)
        raise


def cmd_train(args: argparse.Namespace) -> None:
    _present_ray_token(args.address)
    if args.workdir is not None:
        os.chdir(args.workdir)
    from dsrl_ray.app.train import check_run_dir, default_run_dir, train_from_experiment
    from dsrl_ray.experiment import load_experiment

    experiment = load_experiment(args.config, profile=args.profile)
    overrides = train_overrides(args)
    if overrides:
        experiment = experiment.override(overrides, "command line")
    run_dir = args.run_dir if args.run_dir is not None else default_run_dir(experiment)
    check_run_dir(run_dir, resume=args.resume)
    config = _checked_config(experiment)
    with _removed_unless_started(run_dir), _ray_session(args.address, config):
        result = train_from_experiment(experiment, run_dir, resume=args.resume, progress=args.progress)
    summary = ", ".join(f"{k}={v}" for k, v in result.metrics.items() if v is not None)
    print(f"run directory: {Path(result.run_dir).resolve()}")
    print(f"final checkpoint: {Path(result.checkpoint).resolve()}")
    if result.best is not None:
        best = result.best
        print(f"best checkpoint: {best.path.resolve()}  (iteration {best.iteration}, {best.env_steps} env steps, "
              f"{best.metric} {best.score:.3g} over the last {best.episodes} training episodes)")
    print(f"after {result.iterations} iterations, {result.env_steps} env steps: {summary}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run one command; an anticipated error exits with status 2 after one ``error: ...`` line on stderr."""
    args = build_parser().parse_args(argv)
    quiet_library_logs()
    if args.debug:
        args.func(args)
        return
    try:
        args.func(args)
    except Exception as err:
        if not isinstance(err, anticipated_errors()):
            raise
        print(error_line(err), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USER_ERROR) from None


if __name__ == "__main__":
    main(sys.argv[1:])
