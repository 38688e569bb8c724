"""Merged /opt trees: later layers win, links are never followed, each list merged once."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from lambdaplane.code.layers import LayerTrees, overlay


def tree(root: Path, entries: dict[str, str | None]) -> Path:
    """Files (text) and directories (None) under ``root``."""
    root.mkdir(parents=True)
    for name, content in entries.items():
        path = root / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return root


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    overlay(tree(tmp_path / "a", {"python/x.py": "a", "only_a": "a", "was_dir/f": "a"}), dest)
    overlay(tree(tmp_path / "b", {"python/x.py": "b", "was_dir": "now a file"}), dest)
    assert (dest / "python" / "x.py").read_text() == "b"
    assert (dest / "only_a").read_text() == "a"
    assert (dest / "was_dir").read_text() == "now a file"
    overlay(tree(tmp_path / "c", {"only_a/inside": "c"}), dest)  # a directory replaces a file
    assert (dest / "only_a" / "inside").read_text() == "c"


def test_symlinks_are_recreated_not_followed(tmp_path: Path) -> None:
    outside = tree(tmp_path / "outside", {"secret": "no"})
    first = tree(tmp_path / "first", {})
    os.symlink(str(outside), first / "link")
    dest = tmp_path / "dest"
    dest.mkdir()
    overlay(first, dest)
    assert os.readlink(dest / "link") == str(outside)
    # A later layer's directory at the link's path replaces the link; nothing is written
    # through it.
    overlay(tree(tmp_path / "second", {"link/new": "x"}), dest)
    assert not (dest / "link").is_symlink() and (dest / "link" / "new").read_text() == "x"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_files_keep_their_modes_and_share_data(tmp_path: Path) -> None:
    source = tree(tmp_path / "src", {"bin/tool": "#!/bin/sh\n"})
    (source / "bin" / "tool").chmod(0o755)
    (source / "bin").chmod(0o750)
    dest = tmp_path / "dest"
    dest.mkdir()
    overlay(source, dest)
    tool = dest / "bin" / "tool"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "bin").stat().st_mode) == 0o750
    assert tool.stat().st_ino == (source / "bin" / "tool").stat().st_ino  # a hard link


def test_merged_trees_are_built_once_per_ordered_list(tmp_path: Path) -> None:
    layers = {
        "a" * 64: tree(tmp_path / "u" / "a", {"f": "a"}),
        "b" * 64: tree(tmp_path / "u" / "b", {"f": "b"}),
    }
    calls: list[str] = []

    def unpacked(digest: str) -> Path:
        calls.append(digest)
        return layers[digest]

    trees = LayerTrees(tmp_path / "opt", unpacked)
    assert trees.merged([]) is None
    assert trees.merged(["a" * 64]) == layers["a" * 64]  # one layer: its own tree
    results: list[Path | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(trees.merged(["a" * 64, "b" * 64])))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = results[0]
    assert merged is not None and all(r == merged for r in results)
    assert (merged / "f").read_text() == "b"
    assert stat.S_IMODE(merged.stat().st_mode) == 0o755
    assert calls.count("b" * 64) == 1  # merged once
    other = trees.merged(["b" * 64, "a" * 64])
    assert other is not None and (other / "f").read_text() == "a"
    assert [p.name for p in (tmp_path / "opt").iterdir() if p.name.startswith(".")] == []
