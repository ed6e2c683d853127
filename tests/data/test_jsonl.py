import pytest

from termwise.data.jsonl import (
    atomic_directory,
    atomic_write,
    check_output,
    iter_records,
    require_text,
)
from termwise.errors import TermwiseUserError


def test_records_name_their_line_and_bad_lines_are_counted_when_asked(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n{broken\n[1]\n{"a": 2}\n')
    with pytest.raises(TermwiseUserError, match=r"r.jsonl:3: invalid JSON"):
        list(iter_records(path))
    bad: list[str] = []
    assert [line for line, _, _ in iter_records(path, bad)] == [1, 5]
    assert len(bad) == 2 and "r.jsonl:4: expected a JSON object, got list" in bad[1]


@pytest.mark.parametrize("interrupt", [ValueError("bad record"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_the_old_file_and_no_partial(tmp_path, interrupt):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(type(interrupt)), atomic_write(path) as handle:
        handle.write(b"half of the new")
        raise interrupt
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    with atomic_write(path) as handle:
        handle.write(b"new\n")
    assert path.read_text() == "new\n"


@pytest.mark.parametrize("interrupt", [OSError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_folder_write_leaves_the_old_folder_whole(tmp_path, interrupt):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights").write_text("old")
    with pytest.raises(type(interrupt)), atomic_directory(tmp_path / "model") as partial:
        (partial / "weights").write_text("half")
        raise interrupt
    assert (tmp_path / "model" / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_finished_folder_write_replaces_the_folder_and_leaves_nothing_beside(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale").write_text("old")
    with atomic_directory(tmp_path / "model") as partial:
        (partial / "weights").write_text("new")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["weights"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("case", ["directory", "same as input", "under a file"])
def test_outputs_that_cannot_work_are_refused(tmp_path, case):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    target = {
        "directory": tmp_path,
        "same as input": source,
        "under a file": source / "out.jsonl",
    }[case]
    with pytest.raises(TermwiseUserError):
        check_output(target, source)


@pytest.mark.parametrize(
    ("record", "reason"),
    [({}, "missing"), ({"t": None}, "null"), ({"t": 3}, "got int"), ({"t": " "}, "empty")],
)
def test_require_text_says_which_problem(tmp_path, record, reason):
    with pytest.raises(TermwiseUserError, match=f"f.jsonl:4: t: .*{reason}"):
        require_text(record, "t", tmp_path / "f.jsonl", 4)


def test_a_bad_byte_in_a_record_is_named_at_its_line_and_column(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n{"t\xe9xt": 2}\n')
    with pytest.raises(
        TermwiseUserError, match=r"r.jsonl:2: not UTF-8 text \(byte 0xe9 at column 4\)"
    ):
        list(iter_records(path))
