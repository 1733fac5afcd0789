"""Atomic text writes: the file holds the old text or the whole new one, never a part."""

from __future__ import annotations

import json

import pytest

from dsrl_ray.policies.atomic import atomic_write_text


def test_writes_the_text_and_creates_the_folder(tmp_path):
    path = atomic_write_text("héllo\n", tmp_path / "new" / "a.txt")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "timings.json"
    atomic_write_text(json.dumps({"demos": 1.0}), path)
    with pytest.raises(TypeError):
        atomic_write_text(None, path)  # not text: fails inside the write
    assert json.loads(path.read_text()) == {"demos": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["timings.json"]
