"""A hostile but realistic user: every command that writes refuses to lose what the user had,
every stop leaves a run that resumes, every mistake is one line and exit status 2.

Each test is one case of docs/reliability.md (by family: data loss, tracebacks, wrong status,
misleading output)."""

import os
import signal
import socket
import types

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from termwise.cli import app
from termwise.health import Finding
from termwise.trainer.run_dir import RUN_MARKER
from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.lvm.test_recipe import tiny_lvm_config
from tests.recipes.vae.conftest import tiny_config, write_documents


def _snapshot(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def project(tmp_path):
    """A user's project folder that happens to hold a config.yaml."""
    folder = tmp_path / "proj"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "ideas.md").write_text("years of work")
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    (folder / "config.yaml").write_text("my: settings\n")
    return folder


# -- data loss -------------------------------------------------------------------------------


def test_overwrite_never_deletes_a_project_folder(
    tmp_path, tiny_bert, project, monkeypatch, capsys
):
    config = tiny_config(tmp_path, tiny_bert)
    before = _snapshot(project)
    args = ["vae", "train", "-c", str(config), "-o", str(project), "--overwrite"]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "not a termwise run")
    assert _snapshot(project) == before


@pytest.mark.parametrize("marked", [False, True])
def test_overwrite_of_the_current_directory_is_refused(
    tmp_path, tiny_bert, project, marked, monkeypatch, capsys
):
    config = tiny_lvm_config(tmp_path, tiny_bert)
    own = project / "config.yaml"
    own.write_text(config.read_text())  # the config lives in the folder, as users do
    if marked:
        (project / RUN_MARKER).write_text("{}")
    before = _snapshot(project)
    monkeypatch.chdir(project)
    args = ["lvm", "train", "-c", "config.yaml", "-o", ".", "--overwrite"]
    code, err = run_main(monkeypatch, capsys, *args)
    assert_one_line_exit_2(code, err)
    assert "current directory" in err or "not a termwise run" in err
    assert _snapshot(project) == before


def test_overwrite_never_goes_through_a_symlink(tmp_path, tiny_bert, monkeypatch, capsys):
    config = tiny_config(tmp_path, tiny_bert)
    real = tmp_path / "real"
    real.mkdir()
    (real / RUN_MARKER).write_text("{}")
    (real / "config.yaml").write_text("run: 1\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    args = ["vae", "train", "-c", str(config), "-o", str(link), "--overwrite"]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "symbolic link")
    assert (real / "config.yaml").read_text() == "run: 1\n"


def test_resume_never_touches_someone_elses_checkpoints(
    tmp_path, tiny_bert, project, monkeypatch, capsys
):
    config = tiny_config(tmp_path, tiny_bert)
    (project / "checkpoints").mkdir()
    before = _snapshot(project)
    args = ["vae", "train", "-c", str(config), "-o", str(project), "--resume"]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "not a termwise run")
    assert _snapshot(project) == before


def _fake_model(tmp_path, name):
    model = tmp_path / "run" / "best"
    model.mkdir(parents=True)
    (tmp_path / "run" / RUN_MARKER).write_text("{}")
    (tmp_path / "run" / "eval.json").write_text('{"run": "results"}')
    (model / name).write_text('{"format": "the model"}')
    return model


@pytest.mark.parametrize(
    ("system", "manifest"), [("vae", "termwise_vae.json"), ("lvm", "termwise_lvm.json")]
)
@pytest.mark.parametrize("target", ["manifest", "run eval.json"])
def test_eval_json_never_replaces_the_model_or_its_run(
    tmp_path, system, manifest, target, monkeypatch, capsys
):
    model = _fake_model(tmp_path, manifest)
    data = write_documents(tmp_path / "docs.jsonl", documents=2, sentences=5)
    out = model / manifest if target == "manifest" else model.parent / "eval.json"
    before = out.read_bytes()
    args = [system, "eval", "-m", str(model), "-d", str(data), "--json", str(out), "--force"]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "--json")
    assert out.read_bytes() == before


def test_eval_json_refuses_a_file_it_did_not_write(tmp_path, monkeypatch, capsys):
    model = _fake_model(tmp_path, "termwise_vae.json")
    data = write_documents(tmp_path / "docs.jsonl", documents=2, sentences=5)
    mine = tmp_path / "results.json"
    mine.write_text('{"my": "numbers"}')
    args = ["vae", "eval", "-m", str(model), "-d", str(data), "--json", str(mine)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "--force")
    assert mine.read_text() == '{"my": "numbers"}'


def test_diagnose_data_json_never_replaces_the_data(tmp_path, tiny_bert, monkeypatch, capsys):
    config = tiny_lvm_config(tmp_path, tiny_bert)
    data = tmp_path / "docs.jsonl"
    before = data.read_bytes()
    for force in ([], ["--force"]):
        args = ["lvm", "diagnose-data", "-c", str(config), "--json", str(data), *force]
        assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "is the input file")
    assert data.read_bytes() == before


def _run_with_findings(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_MARKER).write_text("{}")
    (run / "config.yaml").write_text("kl:\n  free_bits: 0.1\n")
    finding = Finding(
        10, "warning", "free_bits.all_free", "m", "s", {"x": 1.0}, "kl",
        [{"config_key": "kl.free_bits", "from": 0.1, "to": 0.02}],
    )  # fmt: skip
    (run / "health.jsonl").write_bytes(finding.to_json() + b"\n")
    (run / "scalars.csv").write_text("step,total\n1,2.0\n")
    return run


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("health.jsonl", "is the input file"),
        ("config.yaml", "is the input file"),
        ("scalars.csv", "is the input file"),
        ("report.json", "one of the run's own files"),  # not there yet: still the run's name
    ],
)
def test_health_fix_never_replaces_a_run_file(tmp_path, name, message, monkeypatch, capsys):
    run = _run_with_findings(tmp_path)
    before = _snapshot(run)
    args = ["health", "fix", str(run), "-o", str(run / name), "--force"]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), message)
    assert _snapshot(run) == before


def test_health_fix_only_with_an_unknown_code_is_an_error(tmp_path, monkeypatch, capsys):
    run = _run_with_findings(tmp_path)
    args = ["health", "fix", str(run), "--only", "free_bits.allfree"]
    code, err = run_main(monkeypatch, capsys, *args)
    assert_one_line_exit_2(code, err, "--only", "did you mean 'free_bits.all_free'")
    assert not (run / "fixed.yaml").exists()


@pytest.mark.parametrize("system", ["vae", "lvm"])
def test_cache_dir_never_writes_into_a_user_folder(
    tmp_path, tiny_bert, system, monkeypatch, capsys
):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "manifest.json").write_text('{"mine": true}')
    (user / "vocab.json").write_text('["my", "words"]')
    maker = tiny_config if system == "vae" else tiny_lvm_config
    config = maker(tmp_path, tiny_bert)
    settings = yaml.safe_load(config.read_text())
    settings["data"]["cache_dir"] = str(user)
    config.write_text(yaml.safe_dump(settings))
    before = _snapshot(user)
    args = [system, "build-data", "-c", str(config)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "not a termwise cache")
    assert _snapshot(user) == before


def test_cache_dir_that_is_a_file_fails_before_the_embedding(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    config = tiny_lvm_config(tmp_path, tiny_bert)
    settings = yaml.safe_load(config.read_text())
    settings["data"]["cache_dir"] = str(tmp_path / "docs.jsonl")
    config.write_text(yaml.safe_dump(settings))
    import termwise.recipes.lvm.data as lvm_data

    monkeypatch.setattr(lvm_data, "embed_texts", lambda *a, **k: pytest.fail("embedded"))
    args = ["lvm", "build-data", "-c", str(config)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "is a file")


def test_sigterm_saves_a_checkpoint_that_resume_continues(tmp_path, tiny_bert, monkeypatch, capsys):
    from termwise.trainer.loop import Trainer

    config = tiny_config(tmp_path, tiny_bert)  # checkpoint_every is 0: no periodic save
    run = tmp_path / "run"
    original = Trainer.train_step

    def killed_at_step_3(self, batch):
        original(self, batch)
        if self.state.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill`, `timeout` or a scheduler does

    monkeypatch.setattr(Trainer, "train_step", killed_at_step_3)
    code, err = run_main(monkeypatch, capsys, "vae", "train", "-c", str(config), "-o", str(run))
    assert code == 143 and "stopped (SIGTERM)" in err and "Traceback" not in err, err
    assert (run / "checkpoints" / "step_00000003").is_dir()
    monkeypatch.setattr(Trainer, "train_step", original)
    code, err = run_main(monkeypatch, capsys, "vae", "train", "-c", str(config), "-o", str(run))
    assert_one_line_exit_2(code, err, "--resume")
    args = ["vae", "train", "-c", str(config), "-o", str(run), "--resume"]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 0, err
    assert (run / "model").is_dir() and (run / "eval.json").is_file()


# -- tracebacks --------------------------------------------------------------------------------


def test_a_permission_error_is_one_line(tmp_path, monkeypatch, capsys):
    run = _run_with_findings(tmp_path)
    import termwise.data.jsonl as jsonl

    def read_only(path, data, owner=None):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(jsonl, "write_bytes_atomic", read_only)
    code, err = run_main(monkeypatch, capsys, "report", str(run))
    assert_one_line_exit_2(code, err, "report.html", "permission denied")


def test_an_output_under_a_read_only_folder_is_refused_first(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(locked) else real(p, m))
    data = tmp_path / "t.csv"
    data.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    args = ["probe", str(data), "--target", "y", "--json", str(locked / "out.json")]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "cannot write in")


def test_pref_calibrate_on_a_read_only_model_fails_before_the_fit(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    model.mkdir()
    manifest = model / "termwise_pref.json"
    manifest.write_text("{}")
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(manifest) else real(p, m))
    args = ["pref", "calibrate", "-m", str(model), "-d", str(data)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "read-only")


def test_clamp_lo_above_hi_is_one_line(tmp_path, tiny_bert, monkeypatch, capsys):
    config = tiny_lvm_config(tmp_path, tiny_bert)
    settings = yaml.safe_load(config.read_text())
    settings["objective"] = {"clamp": [0.05, 0.0001]}
    config.write_text(yaml.safe_dump(settings))
    args = ["lvm", "train", "-c", str(config), "-o", str(tmp_path / "run")]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "objective.clamp", "lo < hi")


# -- wrong status ------------------------------------------------------------------------------


def test_a_duplicated_key_is_an_error(tmp_path, tiny_bert, monkeypatch, capsys):
    config = tiny_config(tmp_path, tiny_bert)
    config.write_text(config.read_text() + "iw_samples: 5\n")
    args = ["vae", "build-data", "-c", str(config)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "iw_samples: duplicated key")


def test_serve_on_a_busy_port_fails_before_loading(tmp_path, monkeypatch, capsys):
    import termwise.serve.served as served

    monkeypatch.setattr(served, "load_served", lambda m: pytest.fail("loaded the model"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["serve", "-m", str(tmp_path), "--port", str(port)]
        assert_one_line_exit_2(
            *run_main(monkeypatch, capsys, *args), f"cannot listen on 127.0.0.1:{port}"
        )
    args = ["serve", "-m", str(tmp_path), "--host", "192.0.2.1"]  # TEST-NET: not an address here
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "--host", "192.0.2.1")


def test_serve_port_0_prints_the_port_it_got(tiny_bert, tmp_path, monkeypatch, capsys):
    import uvicorn

    from tests.recipes.btrm.test_score import saved_lora_model

    model = saved_lora_model(tiny_bert, tmp_path / "m")
    served_on = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: served_on.append(sockets[0].getsockname())
    )
    code, err = run_main(monkeypatch, capsys, "serve", "-m", str(model), "--port", "0")
    port = served_on[0][1]
    assert code == 0 and port > 0 and f"http://127.0.0.1:{port}" in err, err


# -- misleading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"title": "t"}, "docs.jsonl:2: sentences: missing"),
        ({"sentences": None}, "docs.jsonl:2: sentences: null, expected a list of strings"),
        ({"sentences": "one. two."}, "sentences: expected a list of strings, got str"),
        ({"sentences": ["a.", 3]}, "docs.jsonl:2: sentences[1]: expected a string, got int"),
    ],
)
def test_a_bad_document_says_what_is_wrong(
    tmp_path, tiny_bert, record, message, monkeypatch, capsys
):
    config = tiny_config(tmp_path, tiny_bert)
    docs = tmp_path / "docs.jsonl"
    lines = docs.read_text().splitlines()
    docs.write_text("\n".join([lines[0], orjson.dumps(record).decode(), *lines[1:]]) + "\n")
    args = ["vae", "build-data", "-c", str(config)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), message)


def test_lvm_eval_keeps_the_line_and_field_of_a_bad_record(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    import termwise.recipes.lvm.evaluate as lvm_evaluate

    manifest = types.SimpleNamespace(ood=[], backbone=str(tiny_bert), context=3, offset=1)
    monkeypatch.setattr(lvm_evaluate, "load_lvm", lambda directory: (None, manifest))
    data = tmp_path / "docs.jsonl"
    data.write_text('{"sentences": ["a.", "b."]}\n{"sentences": ["c.", 7]}\n')
    model = tmp_path / "run" / "best"
    model.mkdir(parents=True)
    args = ["lvm", "eval", "-m", str(model), "-d", str(data)]
    code, err = run_main(monkeypatch, capsys, *args)
    assert_one_line_exit_2(code, err, "docs.jsonl:2: sentences[1]: expected a string, got int")


@pytest.mark.parametrize("system", ["vae", "lvm"])
def test_help_names_the_folder_runs_write(system):
    result = CliRunner().invoke(app, [system, "eval", "--help"], env={"COLUMNS": "200"})
    assert "OUTPUT/model" in result.output and "OUTPUT/best" not in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["btrm", "train", "--bogus"], "No such option: --bogus"),
        (["vae", "train"], "Missing option '--config'"),
        (["lvm", "nothing"], "No such command 'nothing'"),
        (["serve", "-m", "x", "--port", "70000"], "--port"),
    ],
)
def test_option_errors_are_one_line(args, fragment, monkeypatch, capsys):
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), fragment, "--help")


def test_a_model_load_prints_no_library_notice(tiny_bert, tmp_path):
    import subprocess
    import sys

    from tests.recipes.btrm.test_score import saved_lora_model

    model = saved_lora_model(tiny_bert, tmp_path / "m")
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "hello"}\n')
    command = "from termwise.cli import main; main()"
    args = ["btrm", "score", "-m", str(model), "-i", str(source), "-o", str(tmp_path / "o.jsonl")]
    done = subprocess.run(
        [sys.executable, "-c", command, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "deprecated" not in done.stderr and "warning" not in done.stderr.lower(), done.stderr


def test_lvm_eval_beside_a_read_only_model_caches_elsewhere(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    import termwise.recipes.lvm.evaluate as lvm_evaluate
    from termwise.errors import TermwiseUserError

    manifest = types.SimpleNamespace(ood=[], backbone=str(tiny_bert), context=3, offset=1)
    monkeypatch.setattr(lvm_evaluate, "load_lvm", lambda directory: (None, manifest))
    caches = []

    def stop_after_the_cache_is_chosen(config, console):
        caches.append(config.cache_dir)
        raise TermwiseUserError("stop here")

    monkeypatch.setattr(lvm_evaluate, "build_corpus", stop_after_the_cache_is_chosen)
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(run) else real(p, m))
    data = write_documents(tmp_path / "docs.jsonl", documents=2, sentences=5)
    args = ["lvm", "eval", "-m", str(run / "best"), "-d", str(data)]
    assert_one_line_exit_2(*run_main(monkeypatch, capsys, *args), "stop here")
    assert run not in caches[0].parents and not caches[0].exists()  # temporary, removed
    assert sorted(p.name for p in run.iterdir()) == ["best"]


@pytest.mark.parametrize("flag", [[], ["--resume"], ["--overwrite"]])
def test_a_second_train_on_a_live_run_is_refused_whatever_the_flag(
    flag, tmp_path, tiny_bert, monkeypatch, capsys
):
    from termwise.trainer.run_lock import run_lock

    config = tiny_config(tmp_path, tiny_bert)
    run = tmp_path / "run"
    args = ["vae", "train", "-c", str(config), "-o", str(run)]
    assert run_main(monkeypatch, capsys, *args)[0] == 0
    before = _snapshot(run)
    with run_lock(run):  # a live run holds it
        code, err = run_main(monkeypatch, capsys, *args, *flag)
    assert_one_line_exit_2(code, err, "another termwise run", f"pid {os.getpid()}")
    assert _snapshot(run) == before
