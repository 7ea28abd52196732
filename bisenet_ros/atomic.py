"""Files written whole or not at all: checkpoints, exported graphs, engines.

Each is written under a temporary name beside its target and renamed over it when complete,
so a crash or Ctrl-C never leaves a half-written file under the real name. SIGKILL (or power
loss) skips every clean-up, so the temporary file stays: ``remove_leftovers`` deletes such
files the next time the same folder is written to. Files get the mode a plain ``open()``
would give them (0666 less the umask), not ``mkstemp``'s owner-only 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = ".partial-"


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``target`` to write to; renamed to ``target`` if the block
    completes, removed otherwise. ``suffix``: for writers that go by the file's extension."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _default_mode())
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary files that a killed writer left in ``folder``; returns them."""
    leftovers = sorted(Path(folder).glob(f"{PREFIX}*")) if Path(folder).is_dir() else []
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers
