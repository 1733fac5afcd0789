"""Atomic file writes (``torch.save``, text): a reader sees the old file or the complete new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import torch


@contextlib.contextmanager
def _replacing(path: Path, mode: str, encoding: str | None = None) -> Iterator[IO]:
    """A temp file in ``path``'s folder, opened with ``mode``; flushed, fsynced and ``os.replace``-d onto ``path``
    when the block ends. On any failure the temp file is removed and the exception re-raised; ``path`` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to a temp file in ``path``'s folder, fsync, then ``os.replace`` onto ``path``.

    On any failure the temp file is removed and the exception re-raised; ``path`` is untouched.
    """
    path = Path(path)
    with _replacing(path, "wb") as f:
        torch.save(obj, f)
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to a temp file in ``path``'s folder, fsync, then ``os.replace`` onto ``path``.

    On any failure the temp file is removed and the exception re-raised; ``path`` is untouched.
    """
    path = Path(path)
    with _replacing(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
