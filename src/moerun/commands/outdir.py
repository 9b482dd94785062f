"""Write a whole output folder atomically: all of it appears, or none of it.

The files are written into a temporary folder next to the target and renamed into place, so
a failure part-way (a full disk, an error while writing) leaves no half-written folder; an
existing folder is only replaced, with --force, after the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from moerun.errors import UsageError

DIR_MODE = 0o755
SCRIPT_MODE = 0o755
FILE_MODE = 0o644


def check_out_dir(out: Path, force: bool) -> None:
    """UsageError if `out` cannot be written: not a folder, or not empty without --force."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out} exists and is not empty; pass --force to replace it")
    _check_folder_writable(_nearest_existing(out.absolute().parent), f"--out {out}")


def check_out_file(path: Path, flag: str) -> None:
    """UsageError unless `path` can be written as a file, before any work is done.

    The folder must exist (nothing is created for a file) and accept a new file: a probe file
    is created and removed there, which also catches read-only mounts where `os.access` says
    yes to root.
    """
    where = f"{flag} {path}"
    if path.is_dir():
        raise UsageError(f"{where} is a folder; give a file name")
    parent = path.absolute().parent
    if not parent.exists():
        existing = _nearest_existing(parent)
        if not existing.is_dir():
            raise UsageError(f"{where}: {existing} is a file, not a folder; choose another path")
        raise UsageError(f"{where}: folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise UsageError(f"{where}: {parent} is not a folder; choose another path")
    _check_folder_writable(parent, where)


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _check_folder_writable(folder: Path, where: str) -> None:
    if not folder.is_dir():
        raise UsageError(f"{where}: {folder} is a file, not a folder; choose another path")
    try:
        probe = tempfile.mkstemp(prefix=".moerun-probe-", dir=folder)
    except OSError as exc:
        raise UsageError(
            f"{where}: cannot write in {folder} ({exc.strerror or exc}); choose another path"
        ) from None
    os.close(probe[0])
    os.unlink(probe[1])


def write_file(path: Path, text: str) -> None:
    """Write one file (a seam for tests that simulate a failure)."""
    path.write_text(text, encoding="utf-8", newline="\n")


def write_tree(
    out: Path, files: Mapping[str, str], executable: frozenset[str], force: bool
) -> list[str]:
    """Write `files` (relative path -> text) as folder `out`; returns the paths written."""
    check_out_dir(out, force)
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    try:
        for rel in sorted(files):
            path = tmp / rel
            for folder in reversed(path.relative_to(tmp).parents[:-1]):
                (tmp / folder).mkdir(mode=DIR_MODE, exist_ok=True)
            write_file(path, files[rel])
            path.chmod(SCRIPT_MODE if rel in executable else FILE_MODE)
        tmp.chmod(DIR_MODE)
        _swap_in(tmp, out.absolute(), parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(files)


def _swap_in(tmp: Path, out: Path, parent: Path) -> None:
    if not out.exists():
        tmp.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
    old.rmdir()
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
