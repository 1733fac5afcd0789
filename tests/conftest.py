import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run the long end-to-end runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long end-to-end run; use --runslow (its short form runs in CI)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _ensure_local_ray():
    """The Ray of this process: ``ray.init(num_cpus=2)`` without dashboard, workers pinned to one
    thread, unless one is already initialised (then it is used as it is)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
            log_to_driver=False,
        )
    return ray


@pytest.fixture(scope="session")
def _local_ray_session():
    """Starts the local Ray once per session, before any test's ``_keep_ray_auth_mode`` snapshot
    (``ray.init`` sets ``RAY_AUTH_MODE``, which later Ray processes must inherit); shuts it down at the end."""
    ray = _ensure_local_ray()
    yield
    ray.shutdown()


@pytest.fixture
def ray_local(_local_ray_session):
    """A local Ray for the test (see ``_ensure_local_ray``), shared by the tests of this process and
    shut down at the end. It is started again when an earlier test shut it down (the multi-node
    tests replace it by their own cluster)."""
    return _ensure_local_ray()


@pytest.fixture(scope="module")
def ray_local_module(_local_ray_session):
    """``ray_local`` for module-scoped fixtures."""
    return _ensure_local_ray()


def _made_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """Directory ``name`` filled by ``build(dir)`` once per test run, shared by all pytest-xdist workers.

    Without xdist the directory lives in this session's temporary root; with xdist in the root
    all workers share, and a file lock makes the first worker build it while the others wait.
    """
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            out.mkdir(exist_ok=True)
            build(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def twogoal_run(tmp_path_factory):
    """A TwoGoal run directory with ``demos.hdf5`` and ``base_policy/`` (5000 BC steps), made once per test run."""
    from dsrl_ray.app.cli import main

    def build(run: Path) -> None:
        main(["demos", "--task", "twogoal", "--out", str(run / "demos.hdf5")])
        main(["pretrain", "--dataset", str(run / "demos.hdf5"), "--out", str(run / "base_policy")])

    return _made_once(tmp_path_factory, "twogoal", build)


@pytest.fixture(scope="session")
def twogoal_policy_path(twogoal_run):
    """Path of the session's TwoGoal base-policy checkpoint."""
    from dsrl_ray.policies.checkpoint import resolve_policy_path

    return resolve_policy_path(twogoal_run / "base_policy")


@pytest.fixture(scope="session")
def twogoal_flow_policy_path(twogoal_run, tmp_path_factory):
    """Path of a TwoGoal flow-matching base-policy checkpoint (the task preset's BC steps on the session's demos)."""
    from dsrl_ray.app.cli import main
    from dsrl_ray.policies.checkpoint import resolve_policy_path

    def build(out: Path) -> None:
        main(["pretrain", "--policy-type", "flow", "--dataset", str(twogoal_run / "demos.hdf5"), "--out", str(out)])

    return resolve_policy_path(_made_once(tmp_path_factory, "twogoal_flow", build))


@pytest.fixture
def twogoal_config(twogoal_policy_path, tmp_path):
    """Factory of small :class:`DSRLConfig` objects on ``dsrl/twogoal`` (cheap nets, short fragments).

    Keyword arguments go to ``training()``; ``runners``/``envs`` set the env-runner count and
    envs per runner; ``fragment`` the rollout fragment length.
    """
    import dsrl_ray

    dsrl_ray.register()
    from dsrl_ray.rllib import DSRLConfig

    def make(*, runners: int = 1, envs: int = 2, fragment: int = 10, seed: int = 0, **training):
        defaults = dict(
            base_policy_path=str(twogoal_policy_path),
            hidden_sizes=[32, 32],
            utd=1,
            init_rollout_steps=20,
            train_batch_size_per_learner=32,
            tensorboard_dir=os.fspath(tmp_path / "tensorboard"),
        )
        return (
            DSRLConfig()
            .environment("dsrl/twogoal")
            .training(**{**defaults, **training})
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs, rollout_fragment_length=fragment)
            .debugging(seed=seed)
        )

    return make


@pytest.fixture(autouse=True)
def _keep_ray_auth_mode():
    """Undo any change a test makes to ``RAY_AUTH_MODE``: Ray processes started later inherit it."""
    before = os.environ.get("RAY_AUTH_MODE")
    yield
    if before is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = before
