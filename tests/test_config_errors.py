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


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, monkeypatch, capsys):
    levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n")  # 9**9 values once expanded
    code, err = run_main(monkeypatch, capsys, "vae", "train", "-c", str(path), "-o", "r")
    assert_one_line_exit_2(code, err, "bomb.yaml", "aliases")
    assert not (tmp_path / "r").exists()


def test_a_config_with_a_few_aliases_still_loads(tmp_path):
    from termwise.config import load_yaml_config
    from termwise.trainer.config import TrainerConfig

    path = tmp_path / "t.yaml"
    path.write_text("max_steps: &n 40\nlog_every: *n\n")
    assert load_yaml_config(path, TrainerConfig).log_every == 40


@pytest.mark.parametrize(
    ("section", "field", "value", "limit"),
    [
        ("model", "embed_dim", 1.0e9, "65536"),
        ("model", "latent_dim", 10**6, "65536"),
        ("model", "encoder_layers", 10**5, "1024"),
        ("trainer", "batch_size", 10**8, "1000000"),
        ("trainer", "max_steps", 10**12, "1000000000"),
    ],
)
def test_absurd_sizes_are_refused_with_their_limit(
    section, field, value, limit, tmp_path, monkeypatch, capsys
):
    import yaml

    path = tmp_path / "vae.yaml"
    assert run_main(monkeypatch, capsys, "vae", "gen-config", "-o", str(path))[0] == 0
    config = yaml.safe_load(path.read_text())
    config[section][field] = value
    path.write_text(yaml.safe_dump(config))
    code, err = run_main(monkeypatch, capsys, "vae", "train", "-c", str(path), "-o", "r")
    assert_one_line_exit_2(code, err, f"{section}.{field}", f"less than or equal to {limit}")


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (", ohlcv: true", ["time_col: not used with ohlcv: true"]),
        (", features: [f0, nope]", ["data.features", "no column 'nope'"]),
    ],
)
def test_bayes_clf_names_its_config_keys(data, fragments, tmp_path, monkeypatch, capsys):
    config = _bayes(tmp_path, data=data)
    out = str(tmp_path / "r")
    code, err = run_main(monkeypatch, capsys, "bayes-clf", "train", "-c", str(config), "-o", out)
    assert_one_line_exit_2(code, err, *fragments)


def test_bayes_clf_ohlcv_without_bars_names_the_config_key(tmp_path, monkeypatch, capsys):
    series = _series(tmp_path / "s.csv")
    path = tmp_path / "bayes.yaml"
    path.write_text(f"data: {{path: {series}, target: direction_5, ohlcv: true}}\n")
    out = str(tmp_path / "r")
    code, err = run_main(monkeypatch, capsys, "bayes-clf", "train", "-c", str(path), "-o", out)
    assert_one_line_exit_2(code, err, "data.ohlcv: true needs columns open")
    assert "--ohlcv" not in err
