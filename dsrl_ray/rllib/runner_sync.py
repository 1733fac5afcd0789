"""Runner and learner plumbing that RLlib 2.60 keeps private: every such access lives in this file.

DSRL drives RLlib below its public API in a few places (the weights state server, restarted
runners, learner calls without a metrics reduce, the learner's gradient path: losses,
parameters and device). Each is one small function here, named for
what it does, so a Ray upgrade has exactly one file to check (``docs/rllib-integration.md``).

Functions whose first argument is ``env_runner`` run on an env-runner actor
(``foreach_env_runner``); the others run on the driver.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.rllib.core import COMPONENT_RL_MODULE
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO


# ---------------------------------------------------------------------------- on env runners
def sample_with_metrics(env_runner: Any, server: Any | None = None) -> tuple[list, dict, int]:
    """One ``sample()`` (which first pulls newer weights), the runner's metrics, its index.

    ``server`` (the state-server handle) is handed over again if the runner lacks it: a runner
    process that Ray restarted before anyone noticed its death starts without it, and with it
    pulls the newest weights before this very sample.
    """
    if server is not None and getattr(env_runner, "_env_runner_state_server", None) is None:
        set_state_server(env_runner, server)
    return env_runner.sample(), env_runner.get_metrics(), env_runner.worker_index


def set_state_server(env_runner: Any, server: Any) -> None:
    """Give the runner the ``EnvRunnerStateServer`` handle it pulls weights from before sampling."""
    env_runner._env_runner_state_server = server


def force_weights(env_runner: Any, state_ref: ray.ObjectRef) -> None:
    """Load the given ``{rl_module, weights_seq_no}`` whatever the runner's version, then adopt their version."""
    state = ray.get(state_ref)
    env_runner.set_state({COMPONENT_RL_MODULE: state[COMPONENT_RL_MODULE], WEIGHTS_SEQ_NO: 0})
    env_runner._weights_seq_no = state[WEIGHTS_SEQ_NO]


def rejoin(env_runner: Any, state_ref: ray.ObjectRef, server: Any | None) -> None:
    """On a restarted runner: the learner's current weights, and the state-server handle if there is one."""
    force_weights(env_runner, state_ref)
    if server is not None:
        set_state_server(env_runner, server)


# ---------------------------------------------------------------------------- learners
def learner_results(learner_group: Any, refs: Any) -> list[Any]:
    """The results of a ``foreach_learner`` call, errors raised."""
    return learner_group._get_results(refs)


def local_learner(learner_group: Any) -> Any:
    """The learner of a local learner group (``num_learners=0``)."""
    return learner_group._learner


def learner_actors(learner_group: Any) -> Any:
    """The ``FaultTolerantActorManager`` of a remote learner group (async calls)."""
    return learner_group._worker_manager


def weights_version(learner: Any) -> int:
    """The learner's weights sequence number (what runners compare before pulling)."""
    return int(learner._weights_seq_no)


def set_weights_version(learner: Any, version: int) -> None:
    """Set the learner's weights sequence number (``Learner.set_state`` skips older weights otherwise)."""
    learner._weights_seq_no = int(version)


def update_without_reduce(learner: Any, batch: Any, timesteps: dict[str, Any]) -> None:
    """One ``Learner.update`` whose metrics stay in the logger until the caller reduces them."""
    learner.update(batch=batch, timesteps=timesteps, _no_metrics_reduce=True)


def record_loss(learner: Any, module_id: str, name: str, loss: Any) -> None:
    """Hand RLlib's ``compute_gradients`` the loss of optimizer ``name`` (it wants ``<name>_loss`` per optimizer)."""
    learner._temp_losses[(module_id, f"{name}_loss")] = loss


# ---------------------------------------------------------------------------- env-runner fault tolerance
def runner_actors(env_runner_group: Any) -> Any:
    """The ``FaultTolerantActorManager`` of an env-runner group."""
    return env_runner_group._worker_manager


def ping(manager: Any, index: int) -> ray.ObjectRef:
    """A ``ping`` of runner ``index`` that can be waited on without blocking."""
    return manager._actors[index].ping.remote()


def take_restored(manager: Any) -> list[int]:
    """Indices of the runners Ray restarted since the last call (and forget them)."""
    restored = sorted(manager._restored_actors)
    manager._restored_actors.clear()
    return restored


def count_restored(algorithm: Any, n: int) -> None:
    """Add ``n`` to RLlib's ``total_num_restored_workers`` counter."""
    algorithm._counters["total_num_restored_workers"] += n


def disable_auto_state_sync(config: Any) -> None:
    """Stop RLlib from syncing env-runner states itself (DSRL pushes weights through its state server)."""
    config._dont_auto_sync_env_runner_states = True


# ---------------------------------------------------------------------------- learner internals (gradient path)
def learner_device(learner: Any) -> Any:
    """The torch device the learner trains on."""
    return learner._device


def learner_params(learner: Any) -> dict:
    """The learner's ``{param ref: parameter}`` map (what ``filter_param_dict_for_optimizer`` filters)."""
    return learner._params


def pop_loss(learner: Any, module_id: str, name: str) -> Any:
    """Take the loss :func:`record_loss` recorded for optimizer ``name`` this step (``None`` if there is none)."""
    return learner._temp_losses.pop((module_id, f"{name}_loss"), None)


def check_no_losses_left(learner: Any) -> None:
    """Raise if a recorded loss names no optimizer (a misspelt name would otherwise train nothing)."""
    if learner._temp_losses:
        left = sorted(str(key) for key in learner._temp_losses)
        learner._temp_losses.clear()
        raise ValueError(f"losses {left} have no optimizer of that name")


def has_grad_scalers_or_lr_schedulers(learner: Any) -> bool:
    """Whether the learner uses AMP grad scalers or torch lr schedulers (RLlib's own apply path handles them)."""
    return learner._grad_scalers is not None or learner._lr_scheduler_classes is not None
