"""The commands a person types: ``python -m dsrl_ray <command>`` or ``dsrl-ray <command>``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")


def _add_demos(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demos",
        help="collect scripted demonstrations into a robomimic-layout HDF5 file",
        description="Run a task's scripted demonstrator with Gaussian action noise of std SIGMA "
        "and write the episodes as robomimic low-dim HDF5 (data/demo_N/obs/<key>, actions, ...).",
    )
    p.add_argument("--task", default="lift", help="task name (lift, can, twogoal); default: lift")
    p.add_argument("--n", type=int, default=None, help="number of demonstrations to keep (default: the task preset)")
    p.add_argument("--sigma", type=float, default=None, help="action-noise std (default: the task preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-failures", action="store_true", help="also keep episodes that did not succeed")
    p.add_argument("--out", type=Path, required=True, help="output .hdf5 path")
    p.set_defaults(func=cmd_demos)


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="behaviour-clone a diffusion base policy from a robomimic-layout HDF5 dataset",
        description="Train a DPPO-style residual-MLP diffusion policy (epsilon prediction, cosine "
        "schedule, EMA) on a demo dataset. Checkpoints are written atomically to OUT/ and training "
        "resumes from the newest one there (use a new OUT to start afresh).",
    )
    p.add_argument("--dataset", type=Path, required=True, help="robomimic-layout .hdf5 file")
    p.add_argument("--out", type=Path, required=True, help="output directory for checkpoints")
    p.add_argument("--task", default=None, help="task the dataset belongs to (default: from the file's env_args)")
    p.add_argument("--steps", type=int, default=None, help="gradient steps (default: the task preset)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the task preset)")
    p.add_argument("--mlp-dims", type=int, nargs="+", default=None, help="hidden widths, e.g. 512 512 512")
    p.add_argument("--time-dim", type=int, default=None)
    p.add_argument("--denoising-steps", type=int, default=None, help="DDPM steps T")
    p.add_argument("--ddim-steps", type=int, default=None, help="DDIM steps K used at sampling time")
    p.add_argument("--checkpoint-every", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_pretrain)


def _add_eval(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--task", default=None, help="task name (default: the one stored in the base-policy checkpoint)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    p.add_argument("--video", type=Path, default=None, help="also film the first episode to this .gif or .mp4")
    p.set_defaults(func=cmd_eval)


def _add_pipeline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="demos -> base policy -> DSRL steering -> base vs steered evaluation, under one run directory",
        description="The main job: collect scripted demos with noise, pretrain a diffusion base policy, "
        "evaluate it, steer it with DSRL on local Ray env runners, evaluate the steered policy on the same "
        "episodes, and draw the learning curve (PNG) and a base vs steered episode (GIF). Every artefact "
        "goes under RUN_DIR; steps whose output exists are skipped or resumed.",
    )
    p.add_argument("--task", default="lift", help="lift (default), can or twogoal")
    p.add_argument("--run-dir", type=Path, default=None, help="default: runs/<task>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes for each policy (default: the task preset)")
    p.add_argument("--pretrain-steps", type=int, default=None, help="BC gradient steps (default: the task preset)")
    p.add_argument("--variant", choices=("na", "sac"), default="na", help="DSRL variant (default: na)")
    p.add_argument("--config", type=Path, default=None, help="experiment YAML (default: configs/<task>_<variant>.yaml)")
    p.add_argument("--profile", default="cpu", help="profile of the YAML (default: cpu; 'none' for the paper setting)")
    p.add_argument("--env-steps", type=int, default=None, help="DSRL env-step budget (default: the YAML's)")
    p.add_argument("--num-env-runners", type=int, default=None, help="env runners (default: the YAML's)")
    p.set_defaults(func=cmd_pipeline)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune a base policy with DSRL (Ray/RLlib) from an experiment YAML",
        description="Train DSRL's noise policy on one experiment config (configs/<task>_<variant>.yaml) "
        "until its env-step budget: starts Ray locally (or attaches to --address), shows a progress bar, "
        "and writes RUN_DIR/progress.csv, RUN_DIR/tensorboard/, RUN_DIR/experiment.yaml (the effective "
        "config) and the latest checkpoint under RUN_DIR/checkpoints/. Env steps are latent-action "
        "(chunk) steps. Flags override the YAML.",
        epilog="example: dsrl-ray train --config configs/twogoal_na.yaml --profile cpu --env-steps 2000",
    )
    p.add_argument("--config", type=Path, required=True, help="experiment YAML, e.g. configs/lift_na.yaml")
    p.add_argument("--profile", default=None,
                   help="a profile of the YAML merged over it, e.g. cpu (small nets, short run)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="output directory (default: runs/<task>/dsrl_<variant>[_<profile>])")
    p.add_argument("--base-policy", type=Path, default=None,
                   help="base-policy checkpoint (or pretrain directory) replacing the YAML's base_policy")
    p.add_argument("--num-env-runners", type=int, default=None, help="env-runner actors sampling in parallel")
    p.add_argument("--env-steps", type=int, default=None, help="env-step budget (stop.env_steps)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--mode", choices=["sync", "async"], default=None,
                   help="sync: sample, train, repeat (deterministic); async: runners never wait for the learner")
    p.add_argument("--checkpoint-every", type=int, default=None, help="iterations between checkpoints")
    p.add_argument("--address", default=None, help="attach to this Ray cluster (e.g. auto) instead of starting Ray")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsrl-ray",
        description="DSRL: steer a frozen diffusion policy by learning its initial noise with RL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demos(sub)
    _add_pretrain(sub)
    _add_eval(sub)
    _add_pipeline(sub)
    _add_train(sub)
    return parser


def cmd_demos(args: argparse.Namespace) -> None:
    from dsrl_ray.envs import collect_demos
    from dsrl_ray.envs.tasks import get_task_spec

    preset = get_task_spec(args.task).preset
    summary = collect_demos(
        args.task,
        args.n if args.n is not None else preset.n_demos,
        sigma=args.sigma if args.sigma is not None else preset.demo_sigma,
        seed=args.seed,
        out_path=args.out,
        keep_failures=args.keep_failures or preset.keep_failures,
    )
    print(summary)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from dsrl_ray.app.pretrain import pretrain_from_dataset

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
            ).items()
            if v is not None
        },
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    print(f"final checkpoint: {result.checkpoint}  (final loss {result.loss_history[-1][1]:.4f})")


def cmd_eval(args: argparse.Namespace) -> None:
    from dsrl_ray.eval import evaluate_policy
    from dsrl_ray.eval.video import film_episode, side_by_side, write_video
    from dsrl_ray.policies import load_policy
    from dsrl_ray.app.pretrain import checkpoint_task
    from dsrl_ray.policies.checkpoint import resolve_policy_path

    if args.policy is None and args.steered is None:
        raise SystemExit("error: pass --policy (a base policy) and/or --steered (a DSRL checkpoint)")
    noise_fn = None
    if args.steered is not None:
        from dsrl_ray.rllib.noise_policy import load_noise_policy
        from dsrl_ray.app.train import latest_checkpoint

        noise_fn = load_noise_policy(latest_checkpoint(args.steered) or args.steered, explore=not args.deterministic,
                                     seed=args.seed)
    if args.policy is not None:
        path = resolve_policy_path(args.policy)
        policy = load_policy(path)
    else:
        path, policy = noise_fn.base_policy_path, noise_fn.base_policy
    task = args.task or checkpoint_task(path)
    if task is None:
        raise SystemExit("error: the base policy does not name its task; pass --task")
    result = evaluate_policy(task, policy, args.episodes, seed=args.seed, noise_fn=noise_fn)
    print(result.summary())
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    if args.video:
        label = "steered (DSRL)" if noise_fn is not None else "base, w ~ N(0, I)"
        filmed = film_episode(task, policy, seed=args.seed, noise_fn=noise_fn, label=label)
        print(f"video: {write_video(side_by_side([filmed]), args.video)}")


def cmd_pipeline(args: argparse.Namespace) -> None:
    from dsrl_ray.app.pipeline import PipelineSettings, default_run_dir, run_pipeline

    run_pipeline(
        PipelineSettings(
            task=args.task,
            run_dir=args.run_dir or default_run_dir(args.task),
            seed=args.seed,
            episodes=args.episodes,
            pretrain_steps=args.pretrain_steps,
            variant=args.variant,
            config=args.config,
            profile=None if args.profile in ("", "none") else args.profile,
            env_steps=args.env_steps,
            num_env_runners=args.num_env_runners,
        )
    )


def cmd_train(args: argparse.Namespace) -> None:
    from dsrl_ray.experiment import ExperimentError, load_experiment
    from dsrl_ray.app.train import train_from_experiment
    from dsrl_ray.experiment import flag_overrides

    overrides = flag_overrides(
        base_policy=args.base_policy,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        env_steps=args.env_steps,
        num_env_runners=args.num_env_runners,
        mode=args.mode,
    )
    try:
        experiment = load_experiment(args.config, profile=args.profile)
        if overrides:
            experiment = experiment.override(overrides, "command line")
        result = train_from_experiment(
            experiment, args.run_dir, address=args.address, resume=args.resume, progress=not args.no_progress
        )
    except (ExperimentError, FileNotFoundError, FileExistsError) as err:
        raise SystemExit(f"error: {err}") from None
    summary = ", ".join(f"{k}={v}" for k, v in result.metrics.items() if v is not None)
    print(f"run directory: {result.run_dir}")
    print(f"final checkpoint: {result.checkpoint}")
    print(f"after {result.iterations} iterations, {result.env_steps} env steps: {summary}")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
