"""``termwise health fix``: findings as config changes, applied and proven on a rerun."""

import json

import pytest

from termwise.health import Finding
from termwise.health.findings import read_findings
from termwise.health.fix import fix_config
from tests.cli.test_cli import assert_one_line_exit_2, run_main


@pytest.mark.slow
def test_all_free_is_fixed_and_cleared_on_a_rerun(tmp_path, monkeypatch, capsys):
    demo = ["demo", "free-bits", "--max-steps", "200"]
    code, err = run_main(monkeypatch, capsys, *demo, "--run-dir", str(tmp_path / "a"))
    assert code == 0, err
    first, _ = read_findings(tmp_path / "a" / "run1" / "health.jsonl")
    flagged = [f for f in first if f.code == "free_bits.all_free"]
    assert flagged and flagged[-1].changes[0]["config_key"] == "free_bits"
    code, err = run_main(monkeypatch, capsys, "health", "fix", str(tmp_path / "a" / "run1"))
    assert code == 0, err
    fixed = tmp_path / "a" / "run1" / "fixed.yaml"
    text = fixed.read_text()
    assert f"free_bits: {flagged[-1].changes[0]['to']:g}" in text and "# health fix:" in text
    assert "free_bits: 0.1" in (tmp_path / "a" / "config.yaml").read_text()  # never in place
    code, err = run_main(
        monkeypatch, capsys, *demo, "-c", str(fixed), "--run-dir", str(tmp_path / "b")
    )
    assert code == 0, err
    rerun, _ = read_findings(tmp_path / "b" / "run1" / "health.jsonl")
    # The KL grows from ~0 at the start, so the first short windows may still be all free.
    assert not [f for f in rerun if f.code == "free_bits.all_free" and f.step >= 100]
    bands = [f for f in rerun if f.code == "free_bits.band"]
    assert bands and bands[-1].evidence["penalty_reduction"] < 1  # was 100 %: KL has a gradient


def _run(tmp_path, findings, config="kl:\n  free_bits: 0.1\nkl_weight: 1.0\n"):
    run = tmp_path / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(config)
    lines = [json.dumps(json.loads(f.to_json())) for f in findings]
    (run / "health.jsonl").write_text("\n".join(lines) + "\n")
    return run


def _finding(code, subject, key, to, step=10):
    return Finding(
        step,
        "warning",
        code,
        "m",
        "s",
        {"x": 1.0},
        subject,
        [{"config_key": key, "from": 0.1, "to": to}],
    )


def test_conflicting_changes_are_reported_not_merged(tmp_path):
    run = _run(
        tmp_path,
        [
            _finding("free_bits.all_free", "kl", "kl.free_bits", 0.02),
            _finding("free_bits.band", "kl", "kl.free_bits", 0.05),
            _finding("term.negligible", "kl", "kl_weight", 3.0),
        ],
    )
    result = fix_config(run)
    assert len(result.conflicts) == 1 and "kl.free_bits" in result.conflicts[0]
    assert "kl_weight: 3" in result.text and "free_bits: 0.1" in result.text
    only = fix_config(run, only="free_bits.band")
    assert "free_bits: 0.05" in only.text and not only.conflicts


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no config", "no config.yaml"),
        ("renamed key", "kl.free_bits: the config has no such key"),
        ("no findings", "no health.jsonl"),
        ("a file", "is a file, expected a run directory"),
        ("unreadable findings", "2 unreadable line(s) and no finding"),
    ],
)
def test_a_malformed_run_is_one_line(case, message, tmp_path, monkeypatch, capsys):
    finding = _finding("free_bits.all_free", "kl", "kl.free_bits", 0.02)
    run = _run(tmp_path, [finding], config="kl:\n  threshold: 0.1\n")
    if case == "no config":
        (run / "config.yaml").unlink()
    elif case == "no findings":
        (run / "health.jsonl").unlink()
        (run / "config.yaml").write_text("kl:\n  free_bits: 0.1\n")
    if case == "a file":
        run = run / "config.yaml"
    elif case == "unreadable findings":
        (run / "config.yaml").write_text("kl:\n  free_bits: 0.1\n")
        (run / "health.jsonl").write_bytes(b'\x00garbage\n{"step": 1\n')
    code, err = run_main(monkeypatch, capsys, "health", "fix", str(run))
    assert_one_line_exit_2(code, err, message)


def test_auto_fix_reruns_with_the_suggested_value(tmp_path, tiny_bert, monkeypatch, capsys):
    import yaml

    from tests.recipes.vae.conftest import tiny_config

    path = tiny_config(tmp_path, tiny_bert, kl={"free_bits": 2.0}, teacher={"enabled": False})
    run = tmp_path / "run"
    code, err = run_main(
        monkeypatch, capsys, "vae", "train", "-c", str(path), "-o", str(run), "--auto-fix", "1"
    )
    assert code == 0, err
    before, _ = read_findings(run / "health.jsonl")
    assert any(f.code == "free_bits.all_free" for f in before)  # 2 nats a dim: all free
    fixed = yaml.safe_load((run / "fix1.yaml").read_text())
    assert 0 < fixed["kl"]["free_bits"] < 2.0
    assert (run / "fix1" / "model").is_dir()  # the rerun ran, in its own directory
    from termwise.cli_options import key_metric

    assert key_metric(run / "fix1").startswith("val_")  # the table's key-metric column


@pytest.mark.slow
def test_a_kl_that_blocks_learning_is_fixed_and_cleared_on_a_rerun(tmp_path, monkeypatch, capsys):
    from tests.recipes.bayes_clf.test_recipe import series_csv, write_config

    data = tmp_path / "signal.csv"
    series_csv(data, signal=True)
    config = write_config(tmp_path, data, prior_sigma=0.1, kl_weight=1.0)
    first = tmp_path / "first"
    code, err = run_main(
        monkeypatch, capsys, "bayes-clf", "train", "-c", str(config), "-o", str(first)
    )
    assert code == 0, err
    found, _ = read_findings(first / "health.jsonl")
    blocked = [f for f in found if f.code == "kl.blocks_learning"]
    assert blocked and blocked[-1].changes[0]["config_key"] == "kl_weight", found
    code, err = run_main(
        monkeypatch, capsys, "health", "fix", str(first), "--only", "kl.blocks_learning"
    )
    assert code == 0, err
    second = tmp_path / "second"
    code, err = run_main(
        monkeypatch,
        capsys,
        "bayes-clf",
        "train",
        "-c",
        str(first / "fixed.yaml"),
        "-o",
        str(second),
    )
    assert code == 0, err
    rerun, _ = (
        read_findings(second / "health.jsonl") if (second / "health.jsonl").exists() else ([], 0)
    )
    assert not [f for f in rerun if f.code == "kl.blocks_learning"]


def fix_and_rerun(monkeypatch, capsys, train, first, second, code, subject):
    """Train into ``first``, fix its ``code`` finding, rerun the fixed config into
    ``second``; returns the finding fixed and the rerun's findings."""
    code_, err = run_main(monkeypatch, capsys, *train, "-o", str(first))
    assert code_ == 0, err
    found, _ = read_findings(first / "health.jsonl")
    flagged = [f for f in found if f.code == code and f.subject == subject]
    assert flagged and flagged[-1].changes, [f.code for f in found]
    code_, err = run_main(monkeypatch, capsys, "health", "fix", str(first), "--only", code)
    assert code_ == 0, err
    rerun = [*train[:-2], "-c", str(first / "fixed.yaml")] if "-c" in train else None
    assert rerun is not None
    code_, err = run_main(monkeypatch, capsys, *rerun, "-o", str(second))
    assert code_ == 0, err
    path = second / "health.jsonl"
    return flagged[-1], (read_findings(path)[0] if path.exists() else [])


@pytest.mark.slow
def test_too_tight_free_bits_are_fixed_into_the_band(tmp_path, monkeypatch, capsys):
    config = tmp_path / "demo.yaml"
    config.write_text("free_bits: 0.0005\n")
    demo = ["demo", "free-bits", "--max-steps", "200", "-c"]
    code, err = run_main(monkeypatch, capsys, *demo, str(config), "--run-dir", str(tmp_path / "a"))
    assert code == 0, err
    first = tmp_path / "a" / "run1"
    bands = [f for f in read_findings(first / "health.jsonl")[0] if f.code == "free_bits.band"]
    assert bands and "too tight" in bands[-1].message
    code, err = run_main(
        monkeypatch, capsys, "health", "fix", str(first), "--only", "free_bits.band"
    )
    assert code == 0, err
    fixed = first / "fixed.yaml"
    code, err = run_main(monkeypatch, capsys, *demo, str(fixed), "--run-dir", str(tmp_path / "b"))
    assert code == 0, err
    rerun = [f for f in read_findings(tmp_path / "b" / "run1" / "health.jsonl")[0]]
    after = [f for f in rerun if f.code == "free_bits.band"][-1]
    assert after.severity == "info"  # healthy or borderline, no longer too tight
    assert after.evidence["penalty_reduction"] > bands[-1].evidence["penalty_reduction"]


@pytest.mark.slow
def test_a_negligible_teacher_weight_is_raised(tmp_path, tiny_bert, monkeypatch, capsys):
    from tests.recipes.vae.conftest import tiny_config

    # A small flat KL weight: the KL's large early swings would move the teacher's share
    # on their own.
    flat = {"start": 0.01, "end": 0.01}
    stages = [
        {"name": "warm", "epochs": 1, "kl_weight": flat},
        {"name": "main", "epochs": 3, "kl_weight": flat, "teacher_weight": 0.0001},
    ]
    path = tiny_config(tmp_path, tiny_bert, stages=stages)
    train = ["vae", "train", "-c", str(path)]
    flagged, rerun = fix_and_rerun(
        monkeypatch, capsys, train, tmp_path / "a", tmp_path / "b", "term.negligible", "teacher"
    )
    assert flagged.changes[0]["config_key"] == "stages.1.teacher_weight"
    # Over the second half of the rerun it must be gone (the share settles as it trains).
    steps = [
        int(line.split(",")[0])
        for line in (tmp_path / "b" / "scalars.csv").open()
        if line[0].isdigit()
    ]
    late = [f for f in rerun if f.key == ("term.negligible", "teacher") and f.step > max(steps) / 2]
    assert not late
    shares = [
        float(line.split(",")[2])
        for line in (tmp_path / "b" / "scalars.csv").open()
        if ",teacher.share," in line
    ]
    assert shares[-1] > 10 * flagged.evidence["share"]


@pytest.mark.slow
def test_a_pinned_autoscale_clamp_is_moved(tmp_path, tiny_bert, monkeypatch, capsys):
    import yaml

    from tests.recipes.lvm.test_recipe import tiny_lvm_config

    path = tiny_lvm_config(tmp_path, tiny_bert)
    config = yaml.safe_load(path.read_text())
    config["objective"] = {"directional": True, "clamp": [1e-7, 1e-6]}  # far below the target
    path.write_text(yaml.safe_dump(config))
    train = ["lvm", "train", "-c", str(path)]
    flagged, rerun = fix_and_rerun(
        monkeypatch, capsys, train, tmp_path / "a", tmp_path / "b", "autoscale.pinned", "dir"
    )
    assert flagged.changes[0]["config_key"] == "objective.clamp.1"
    assert not [f for f in rerun if f.code == "autoscale.pinned"]


@pytest.mark.slow
def test_kl_blocking_learning_lowers_the_kl_weight(tmp_path, monkeypatch, capsys):
    from tests.recipes.bayes_clf.test_recipe import series_csv, write_config

    data = tmp_path / "signal.csv"
    series_csv(data, signal=True)
    config = write_config(tmp_path, data, prior_sigma=0.1, kl_weight=1.0)
    train = ["bayes-clf", "train", "-c", str(config)]
    flagged, rerun = fix_and_rerun(
        monkeypatch, capsys, train, tmp_path / "a", tmp_path / "b", "kl.blocks_learning", "kl"
    )
    (change,) = flagged.changes
    assert change["config_key"] == "kl_weight" and change["to"] < change["from"] == 1.0
    assert not [f for f in rerun if f.code == "kl.blocks_learning"]


def test_list_items_and_flow_lists_are_changed_in_place(tmp_path):
    run = _run(
        tmp_path,
        [
            _finding("autoscale.pinned", "dir", "objective.clamp.1", 2.5e-5),
            _finding("term.negligible", "teacher", "stages.1.teacher_weight", 0.3),
        ],
        config="objective:\n  clamp: [0.0001, 0.05]\nstages:\n- name: a\n  teacher_weight: 1\n"
        "- name: b\n  teacher_weight: 0.001\n",
    )
    import yaml

    fixed = yaml.safe_load(fix_config(run).text)
    assert fixed["objective"]["clamp"] == [0.0001, 2.5e-05]  # a float, not the string '2.5e-5'
    assert [s["teacher_weight"] for s in fixed["stages"]] == [1, 0.3]
    with pytest.raises(Exception, match="stages.7.teacher_weight: the config has no such key"):
        fix_config(
            _run(
                tmp_path / "x",
                [_finding("term.negligible", "t", "stages.7.teacher_weight", 0.3)],
                config="stages:\n- teacher_weight: 1\n",
            )
        )
