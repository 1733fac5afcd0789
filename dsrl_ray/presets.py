"""Per-task defaults for demonstrations and base-policy pretraining.

Architectures follow the DSRL paper's DPPO base policies where they apply (lift/can:
residual MLP [512]*3, time_dim 16, T=20, 8 DDIM steps, Mish); the small CI task uses a
narrower network so it trains in well under a minute on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskPreset:
    """Defaults for one task.

    Attributes:
        demo_sigma: std of the Gaussian noise added to scripted demonstrator actions.
        n_demos: number of demonstrations to collect.
        keep_failures: keep unsuccessful demos too. TwoGoal needs this: its demonstrator ignores
            the cue, and keeping only successes would teach the policy to follow the cue.
        arch: keyword arguments of ``DiffusionArch`` other than the task's dimensions.
        pretrain_steps: gradient steps of behaviour cloning.
        pretrain_lr: AdamW learning rate of behaviour cloning.
        eval_episodes: episodes per evaluation.
    """

    demo_sigma: float = 0.3
    n_demos: int = 50
    keep_failures: bool = False
    arch: dict = field(default_factory=dict)
    pretrain_steps: int = 20_000
    pretrain_lr: float = 1e-4
    eval_episodes: int = 50


_DPPO_ROBOMIMIC = dict(
    mlp_dims=(512, 512, 512),
    time_dim=16,
    activation="Mish",
    residual_style=True,
    denoising_steps=20,
    ddim_steps=8,
)

PRESETS: dict[str, TaskPreset] = {
    # 4000 BC steps leave the Lift policy imperfect (68 % success, 95 % CI 54-79 %, 50 episodes);
    # 20000 steps reach 98 % on the same demos, which leaves steering nothing to show.
    "lift": TaskPreset(demo_sigma=0.3, n_demos=50, arch=_DPPO_ROBOMIMIC, pretrain_steps=4_000),
    "can": TaskPreset(demo_sigma=0.3, n_demos=50, arch=_DPPO_ROBOMIMIC, pretrain_steps=6_000),
    "twogoal": TaskPreset(
        demo_sigma=0.1,
        n_demos=100,
        keep_failures=True,
        arch=dict(_DPPO_ROBOMIMIC, mlp_dims=(128, 128, 128)),
        pretrain_steps=5_000,
        pretrain_lr=1e-3,
        eval_episodes=100,
    ),
}


def get_preset(task: str) -> TaskPreset:
    """The preset for ``task``; tasks without scripted demos get the DPPO robomimic defaults."""
    return PRESETS.get(task, TaskPreset(arch=_DPPO_ROBOMIMIC))
