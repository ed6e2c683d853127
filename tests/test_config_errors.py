"""Impossible configs are one clear line naming the file, line and field, before anything
heavy loads."""

import pytest

from tests.cli.test_cli import assert_one_line_exit_2, run_main


def _series(path, rows=60):
    body = "".join(f"{i},{i % 7},{i % 3},{i % 2}\n" for i in range(rows))
    path.write_text("t,f0,f1,label\n" + body)
    return path


def _bayes(
    tmp_path, data="", model="d_model: 16, layers: 1, heads: 2", extra="", target="label", window=8
):
    series = _series(tmp_path / "s.csv")
    path = tmp_path / "bayes.yaml"
    path.write_text(
        f"data: {{path: {series}, target: {target}, time_col: t, window: {window}{data}}}\n"
        f"model: {{{model}}}\n{extra}"
        "trainer: {max_steps: 2, progress: false, tensorboard: false}\n"
    )
    return path


@pytest.mark.parametrize(
    ("kind", "fragments"),
    [
        ("heads do not divide width", ["model", "d_model (18) must be divisible by heads (4)"]),
        ("negative kl weight", ["kl_weight", "greater than or equal to 0 or '1/N'"]),
        ("unknown target", ["data.target", "no column 'lable'", "did you mean 'label'"]),
        ("target as feature", ["data.features", "cannot also be a feature"]),
        ("window too long", ["data.window", "longer than every series"]),
        ("unknown key", ["unknown key 'windw'", "did you mean 'window'"]),
    ],
)
def test_bayes_clf_impossible_configs(kind, fragments, tmp_path, monkeypatch, capsys):
    config = {
        "heads do not divide width": lambda: _bayes(
            tmp_path, model="d_model: 18, layers: 1, heads: 4"
        ),
        "negative kl weight": lambda: _bayes(tmp_path, extra="kl_weight: -1\n"),
        "unknown target": lambda: _bayes(tmp_path, target="lable"),
        "target as feature": lambda: _bayes(tmp_path, data=", features: [f0, label]"),
        "window too long": lambda: _bayes(tmp_path, window=500),
        "unknown key": lambda: _bayes(tmp_path, data=", windw: 3"),
    }[kind]()
    code, err = run_main(
        monkeypatch, capsys, "bayes-clf", "train", "-c", str(config), "-o", str(tmp_path / "r")
    )
    assert_one_line_exit_2(code, err, *fragments)


def test_a_config_that_is_not_utf8(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"free_bits: 0.1\n# caf\xe9\n")
    code, err = run_main(monkeypatch, capsys, "demo", "free-bits", "-c", str(path))
    assert_one_line_exit_2(code, err, "c.yaml:2", "not UTF-8")


def test_a_config_path_that_is_a_directory(tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, "demo", "free-bits", "-c", str(tmp_path))
    assert_one_line_exit_2(code, err, "is a directory")


@pytest.mark.parametrize("what", ["missing", "not a model", "a file"])
def test_a_backbone_path_that_is_not_a_model(what, tmp_path, monkeypatch, capsys):
    backbone = tmp_path / "backbone"
    if what == "not a model":
        backbone.mkdir()
    elif what == "a file":
        backbone.write_text("x")
    train = tmp_path / "train.jsonl"
    train.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    config = tmp_path / "pref.yaml"
    config.write_text(f"train_path: {train}\nbackbone:\n  path: {backbone}\n")
    code, err = run_main(
        monkeypatch, capsys, "pref", "train", "-c", str(config), "-o", str(tmp_path / "r")
    )
    assert_one_line_exit_2(code, err, "pref.yaml:3", "backbone.path")


def test_a_directory_where_a_data_file_belongs(tmp_path, monkeypatch, capsys):
    config = tmp_path / "pref.yaml"
    config.write_text(f"train_path: {tmp_path}\n")
    code, err = run_main(
        monkeypatch, capsys, "pref", "train", "-c", str(config), "-o", str(tmp_path / "r")
    )
    assert_one_line_exit_2(code, err, "train_path", "is a directory")


def test_a_bad_dev_record_stops_pref_before_the_first_step(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    train = tmp_path / "train.jsonl"
    train.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n' * 4)
    dev = tmp_path / "dev.jsonl"
    dev.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q"}\n')
    config = tmp_path / "pref.yaml"
    config.write_text(
        f"train_path: {train}\ndev_path: {dev}\nbackbone: {{path: {tiny_bert}, max_length: 64}}\n"
        "trainer: {max_steps: 2, progress: false, tensorboard: false}\n"
    )
    run = tmp_path / "r"
    code, err = run_main(monkeypatch, capsys, "pref", "train", "-c", str(config), "-o", str(run))
    assert_one_line_exit_2(code, err, "dev.jsonl:2: chosen: missing")
    assert not (run / "checkpoints").exists()  # no training happened


def test_old_pref_key_head_still_works_with_a_warning(tmp_path):
    import warnings

    from termwise.errors import TermwiseDeprecationWarning
    from termwise.recipes.pref.config import PrefConfig

    train = tmp_path / "train.jsonl"
    train.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = PrefConfig.model_validate({"head": "gpm", "train_path": str(train)})
    assert config.kind == "gpm"
    assert any(issubclass(w.category, TermwiseDeprecationWarning) for w in caught)
