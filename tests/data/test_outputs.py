"""Outputs: the marker that tells termwise's own output from a user's file, and temporaries
that never take a user's name."""

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from termwise.data.outputs import (
    TEMPORARY_MARKER,
    atomic_directory,
    atomic_write,
    check_output,
    is_own_output,
    marker_path,
    recover_leftovers,
    replace_directory,
    write_json,
)
from termwise.errors import TermwiseUserError


def test_a_users_file_of_the_outputs_shape_needs_force(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"text": "a", "scores": {"x": 1.0}}\n')  # the shape btrm score writes
    with pytest.raises(TermwiseUserError, match="--force"):
        check_output(gold, owner="btrm score")
    check_output(gold, owner="btrm score", force=True)


def test_the_commands_own_output_is_replaced_without_force_and_only_by_it(tmp_path):
    out = tmp_path / "scored.jsonl"
    with atomic_write(out, owner="btrm score") as handle:
        handle.write(b'{"scores": {}}\n')
    assert is_own_output(out, "btrm score")
    check_output(out, owner="btrm score")
    with pytest.raises(TermwiseUserError):
        check_output(out, owner="pref score")  # another command's output is not its own


def test_an_output_edited_after_it_was_written_is_no_longer_its_own(tmp_path):
    out = tmp_path / "eval.json"
    write_json(out, {"overall": 0.5}, owner="pref eval")
    out.write_text('{"overall": 0.9, "mine": true}')
    assert not is_own_output(out, "pref eval")
    with pytest.raises(TermwiseUserError):
        check_output(out, option="--json", owner="pref eval")


def test_a_users_file_at_the_markers_name_is_kept(tmp_path):
    out = tmp_path / "o.json"
    marker_path(out).write_text("my notes")
    write_json(out, {"a": 1}, owner="probe")
    assert marker_path(out).read_text() == "my notes"
    assert not is_own_output(out, "probe")


@pytest.mark.parametrize("kind", ["partial", "old"])
def test_a_users_folder_named_like_a_temporary_survives_a_folder_write(tmp_path, kind):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "w").write_text("old")
    users = tmp_path / f".exp.{kind}"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    with atomic_directory(tmp_path / "exp") as partial:
        (partial / "w").write_text("new")
    assert (users / "keep.txt").read_text() == "mine"
    assert (tmp_path / "exp" / "w").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".exp.{kind}", "exp"]


def test_two_writes_of_one_file_use_different_temporaries(tmp_path):
    out = tmp_path / "o.txt"
    with atomic_write(out) as first, atomic_write(out) as second:
        first.write(b"1")
        second.write(b"2")
        names = [p.name for p in tmp_path.iterdir()]
        assert len(names) == 2 and all(n.endswith(".termwise-partial") for n in names)
    assert out.read_text() == "1"  # the outer block ends last: its rename wins


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _crash_between_renames(tmp_path, monkeypatch) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights").write_text("old")
    (tmp_path / "new").mkdir()
    real_rename = Path.rename

    def crash_on_the_second(self, target):
        if self.name == "new":
            raise KeyboardInterrupt  # the old folder is already aside
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        replace_directory(tmp_path / "new", tmp_path / "model")
    monkeypatch.undo()
    (aside,) = tmp_path.glob(".model.*.termwise-old")
    return aside


def test_a_leftover_of_a_live_writer_is_left_alone(tmp_path, monkeypatch):
    aside = _crash_between_renames(tmp_path, monkeypatch)
    recover_leftovers(tmp_path / "model")  # this process wrote it and still runs
    assert (aside / "weights").read_text() == "old"


def test_an_old_folder_left_aside_by_a_dead_writer_is_put_back(tmp_path, monkeypatch):
    aside = _crash_between_renames(tmp_path, monkeypatch)
    marker = aside / TEMPORARY_MARKER
    marker.write_bytes(orjson.dumps({**orjson.loads(marker.read_bytes()), "pid": _dead_pid()}))
    recover_leftovers(tmp_path / "model")
    assert (tmp_path / "model" / "weights").read_text() == "old"
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["weights"]


def test_a_partial_folder_of_a_dead_writer_is_removed_by_the_next_write(tmp_path):
    leftover = tmp_path / f".model.{os.getpid()}-0123abcd.termwise-partial"
    leftover.mkdir()
    (leftover / TEMPORARY_MARKER).write_bytes(
        orjson.dumps({"host": os.uname().nodename, "pid": _dead_pid()})
    )
    unmarked = tmp_path / ".model.1-0123abcd.termwise-partial"  # no marker: not provably ours
    unmarked.mkdir()
    with atomic_directory(tmp_path / "model") as partial:
        (partial / "w").write_text("new")
    assert not leftover.exists() and unmarked.is_dir()
