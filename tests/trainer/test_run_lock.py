"""One writer per run directory: a live run's lock refuses a second train, a dead run's lock
is taken over."""

import os
import socket
import subprocess
import sys

import orjson
import pytest

from termwise.errors import TermwiseUserError
from termwise.trainer.run_dir import prepare_run_dir
from termwise.trainer.run_lock import LOCK_FILE, run_lock

HOLD = """
import sys, time
from pathlib import Path
from termwise.trainer.run_lock import run_lock
with run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_with_the_holders_name(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        with pytest.raises(
            TermwiseUserError, match=rf"pid {os.getpid()} on {socket.gethostname()}"
        ):
            with run_lock(run):
                pass
    assert not (run / LOCK_FILE).exists()


def test_a_live_process_holds_the_lock_and_its_end_frees_it(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(TermwiseUserError, match=f"pid {holder.pid}"), run_lock(run):
            pass
    finally:
        holder.kill()  # kill -9: the lock file stays, the kernel drops the lock
        holder.wait()
    assert (run / LOCK_FILE).is_file()
    with run_lock(run):  # stale: taken over
        assert orjson.loads((run / LOCK_FILE).read_bytes())["pid"] == os.getpid()


def test_a_folder_made_only_for_the_lock_is_removed_and_a_users_folder_kept(tmp_path):
    with run_lock(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with run_lock(tmp_path / "mine"):
        pass
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_the_lock_file_does_not_make_a_folder_look_used(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        prepare_run_dir(run)  # empty but for the lock: a new run starts
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE, ".termwise-run.json"]
        prepare_run_dir(run, overwrite=True)  # --overwrite keeps the lock it runs under
        assert (run / LOCK_FILE).is_file()


def test_only_the_main_process_of_a_launch_takes_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with run_lock(tmp_path / "run"):
        assert not (tmp_path / "run").exists()


def test_a_link_at_the_locks_name_is_refused_and_its_target_kept(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    mine = tmp_path / "thesis.tex"
    mine.write_text("years of work")
    (run / LOCK_FILE).symlink_to(mine)
    with pytest.raises(TermwiseUserError, match="lock file"), run_lock(run):
        pass
    assert mine.read_text() == "years of work" and (run / LOCK_FILE).is_symlink()
