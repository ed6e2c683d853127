"""Run directories: a run is replaced or resumed only when termwise made it, and replacing
it removes only what a run writes."""

import os

import orjson
import pytest

from termwise.errors import TermwiseUserError
from termwise.trainer.checkpoint import CheckpointManager
from termwise.trainer.run_dir import (
    RUN_MARKER,
    input_paths,
    mark_run_dir,
    model_inputs,
    prepare_run_dir,
)


def _run(path, *user_entries):
    """A run directory as a finished run leaves it, plus entries a person put there."""
    (path / "checkpoints" / "step_00000004").mkdir(parents=True)
    for name in ("config.yaml", "scalars.csv", "health.jsonl", "eval.json"):
        (path / name).write_text("run file\n")
    (path / "model").mkdir()
    (path / "model" / "manifest.json").write_text("{}")
    (path / "timing.json").write_text("{}")  # an output the recipe declared
    mark_run_dir(path, "btrm", [r"timing\.json"])
    for name in user_entries:
        if name.endswith("/"):
            (path / name).mkdir()
            (path / name / "keep.txt").write_text("mine")
        else:
            (path / name).write_text("mine")
    return path


def test_overwrite_removes_the_run_files_and_keeps_the_rest(tmp_path):
    run = _run(tmp_path / "run", "thesis.tex", "notes/")
    prepare_run_dir(run, overwrite=True)
    names = sorted(p.name for p in run.iterdir())
    assert names == [RUN_MARKER, "notes", "thesis.tex"]
    assert (run / "notes" / "keep.txt").read_text() == "mine"


def test_overwrite_keeps_what_another_recipe_would_write(tmp_path):
    run = _run(tmp_path / "run", "run1/", "gates.json")  # free_bits_demo's and older lvm's
    prepare_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == sorted([RUN_MARKER, "gates.json", "run1"])


def test_a_run_from_before_its_marker_named_outputs_loses_its_older_outputs(tmp_path):
    run = _run(tmp_path / "run", "best/", "thesis.tex")
    marker = orjson.loads((run / RUN_MARKER).read_bytes())
    del marker["outputs"]
    (run / RUN_MARKER).write_bytes(orjson.dumps(marker))
    prepare_run_dir(run, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [RUN_MARKER, "thesis.tex"]


def test_overwrite_removes_the_markers_of_run_outputs_and_temporaries_only(tmp_path):
    run = _run(
        tmp_path / "run",
        ".report.html.termwise.json",  # the marker of the run's report: the run's
        ".thesis.tex.termwise.json",  # named like a marker, of a user's file: kept
        ".model.partial/",  # a user's folder named as older termwise temporaries were
        ".model.123-0123abcd.termwise-partial",  # a file temporary of an interrupted write
    )
    prepare_run_dir(run, overwrite=True)
    names = sorted(p.name for p in run.iterdir())
    assert names == sorted([RUN_MARKER, ".model.partial", ".thesis.tex.termwise.json"])


def test_a_folder_with_run_like_files_but_no_marker_is_never_replaced(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    for name in ("config.yaml", "report.json", "health.jsonl", "thesis.tex"):
        (project / name).write_text("mine")
    (project / "checkpoints").mkdir()
    before = sorted(p.name for p in project.iterdir())
    with pytest.raises(TermwiseUserError, match="not a termwise run"):
        prepare_run_dir(project, overwrite=True)
    with pytest.raises(TermwiseUserError, match="not a termwise run"):
        prepare_run_dir(project, resume=True)
    assert sorted(p.name for p in project.iterdir()) == before
    assert (project / "config.yaml").read_text() == "mine"


def test_overwrite_never_replaces_the_current_directory_or_a_parent(tmp_path, monkeypatch):
    run = _run(tmp_path / "run")
    (run / "sub").mkdir()
    for cwd, target in [(run, "."), (run / "sub", ".."), (run / "sub", str(run))]:
        monkeypatch.chdir(cwd)
        with pytest.raises(TermwiseUserError, match="current directory"):
            prepare_run_dir(type(run)(target), overwrite=True)
    assert (run / "config.yaml").is_file()


def test_overwrite_never_replaces_a_folder_holding_an_input(tmp_path):
    run = _run(tmp_path / "run")
    data = run / "data.jsonl"
    data.write_text("{}\n")
    with pytest.raises(TermwiseUserError, match="holds an input"):
        prepare_run_dir(run, overwrite=True, inputs=[data])
    assert data.is_file() and (run / "config.yaml").is_file()


def test_overwrite_never_goes_through_a_symlink(tmp_path):
    run = _run(tmp_path / "run")
    link = tmp_path / "link"
    link.symlink_to(run)
    with pytest.raises(TermwiseUserError, match="symbolic link"):
        prepare_run_dir(link, overwrite=True)
    assert (run / "config.yaml").is_file()


def test_a_new_run_is_marked(tmp_path):
    prepare_run_dir(tmp_path / "new")
    assert (tmp_path / "new" / RUN_MARKER).is_file()


def test_input_paths_collects_every_path_of_a_config(tmp_path):
    from termwise.recipes.lvm.config import LvmConfig

    (tmp_path / "a.jsonl").write_text('{"sentences": ["a."]}\n')
    config = LvmConfig.model_validate(
        {"data": {"sequences": [tmp_path / "a.jsonl"], "cache_dir": tmp_path / "cache"}}
    )
    found = set(input_paths(config))
    assert {tmp_path / "a.jsonl", tmp_path / "cache"} <= found


def test_model_inputs_are_the_model_and_its_run_files(tmp_path):
    run = _run(tmp_path / "run", "notes.txt")
    names = {p.name for p in model_inputs(run / "best")}
    assert {"best", "config.yaml", "health.jsonl", "eval.json", "checkpoints"} <= names
    assert "notes.txt" not in names


@pytest.mark.parametrize("content", [b"\xff\xfe\x00bad", b"../../etc", b"step_1/../../x", b""])
def test_a_corrupt_latest_pointer_is_ignored_not_a_traceback(tmp_path, content):
    run = tmp_path / "run"
    (run / "checkpoints" / "step_00000002").mkdir(parents=True)
    (run / "checkpoints" / "latest").write_bytes(content)
    manager = CheckpointManager(run)
    assert manager.latest() is None
    assert [p.name for p in manager.candidates()] == ["step_00000002"]


def _lvm_yaml(tmp_path, extra):
    data = tmp_path / "docs.jsonl"
    data.write_text('{"sentences": ["a.", "b."]}\n')
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  sequences: [{data}]\n" + extra)
    return path


def test_config_clamp_lo_above_hi_is_one_line(tmp_path):
    from termwise.config import load_yaml_config
    from termwise.recipes.lvm.config import LvmConfig

    path = _lvm_yaml(tmp_path, "objective:\n  clamp: [0.05, 0.0001]\n")
    with pytest.raises(TermwiseUserError) as caught:
        load_yaml_config(path, LvmConfig)
    assert "c.yaml:4: objective.clamp: need 0 <= lo < hi" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("epochs: 2\nepochs: 3\n", "c.yaml:4: epochs: duplicated key (first on line 3)"),
        ("model:\n  width: 8\n  width: 9\n", "c.yaml:5: model.width: duplicated key"),
    ],
)
def test_a_duplicated_yaml_key_is_refused(tmp_path, text, where):
    from termwise.config import load_yaml_config
    from termwise.recipes.lvm.config import LvmConfig

    path = _lvm_yaml(tmp_path, text)
    with pytest.raises(TermwiseUserError) as caught:
        load_yaml_config(path, LvmConfig)
    assert where in str(caught.value)


def test_cache_dir_refuses_a_user_folder_and_a_file(tmp_path):
    from termwise.data.cache_dir import CACHE_MARKER, prepare_cache_dir

    user = tmp_path / "mine"
    user.mkdir()
    (user / "manifest.json").write_text('{"my": "project"}')
    with pytest.raises(TermwiseUserError, match="not a termwise cache"):
        prepare_cache_dir(user, "data.safetensors")
    assert (user / "manifest.json").read_text() == '{"my": "project"}'
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(TermwiseUserError, match="is a file"):
        prepare_cache_dir(afile, "data.safetensors")
    fresh = tmp_path / "fresh"
    prepare_cache_dir(fresh, "data.safetensors")
    assert (fresh / CACHE_MARKER).is_file()
    prepare_cache_dir(fresh, "data.safetensors")  # its own cache: fine again


def test_an_old_unmarked_cache_is_still_used(tmp_path):
    from termwise.data.cache_dir import prepare_cache_dir

    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text('{"key": "abc"}')
    (old / "data.safetensors").write_bytes(b"x")
    prepare_cache_dir(old, "data.safetensors")


def test_check_output_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch):
    from termwise.data.jsonl import check_output

    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode)
    )
    with pytest.raises(TermwiseUserError, match="cannot write in"):
        check_output(tmp_path / "out.json", option="--json")


def test_early_stopping_state_before_any_evaluation_survives_a_checkpoint():
    from termwise.trainer import EarlyStopping

    saved = orjson.loads(orjson.dumps(EarlyStopping("val_nll").state_dict()))  # NaN -> null
    restored = EarlyStopping("val_nll")
    restored.load_state_dict(saved)
    assert restored.best != restored.best and restored.best_step == -1  # NaN again


def test_a_run_written_before_the_marker_is_still_a_run(tmp_path):
    old = tmp_path / "old"
    (old / "checkpoints" / "step_00000004").mkdir(parents=True)
    (old / "checkpoints" / "step_00000004" / "state.json").write_text("{}")
    (old / "notes.txt").write_text("mine")
    prepare_run_dir(old, resume=True)  # resumable as it was
    prepare_run_dir(old, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == [RUN_MARKER, "notes.txt"]
