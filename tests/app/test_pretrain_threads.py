"""Behaviour cloning uses every core of the driver, and gives the thread setting back."""

import pytest
import torch

from dsrl_ray.app.pretrain import torch_threads


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    wanted = 2 if before != 2 else 1
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before


def test_torch_threads_restores_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(2 if before != 2 else 1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_torch_threads_rejects_zero():
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        with torch_threads(0):
            pass
