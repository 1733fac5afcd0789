"""Loading a steered policy from something that is not a DSRL checkpoint fails with a clear error."""

import pytest

from dsrl_ray.rllib.noise_policy import load_noise_policy


def test_a_directory_without_a_module_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a DSRL checkpoint directory.*rl_module"):
        load_noise_policy(tmp_path)
