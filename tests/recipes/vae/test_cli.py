"""``termwise vae`` end to end, and its bad inputs."""

import json

import orjson
import pytest
import yaml

from tests.cli.test_cli import assert_one_line_exit_2, run_main
from tests.recipes.vae.conftest import tiny_config, write_documents


def test_gen_config_build_train_eval_sample(tmp_path, tiny_bert, monkeypatch, capsys):
    (tmp_path / "data" / "sequences").mkdir(parents=True)
    write_documents(tmp_path / "data" / "sequences" / "docs.jsonl")
    generated = tmp_path / "vae.yaml"
    code, err = run_main(
        monkeypatch,
        capsys,
        "vae",
        "gen-config",
        "-o",
        str(generated),
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert code == 0, err
    text = generated.read_text()
    assert "# Nats (per dim" in text and "docs.jsonl" in text  # commented, our data
    small = yaml.safe_load(tiny_config(tmp_path, tiny_bert).read_text())
    config = yaml.safe_load(text)
    config.update(
        {
            k: small[k]
            for k in ("model", "teacher", "stages", "eval_examples", "iw_samples", "trainer")
        }
    )
    config["data"].update(
        {
            "max_tokens": 10,
            "min_count": 1,
            "cache_dir": str(tmp_path / "cache"),
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        }
    )
    generated.write_text(yaml.safe_dump(config))
    code, err = run_main(monkeypatch, capsys, "vae", "build-data", "-c", str(generated))
    assert code == 0, err
    run = tmp_path / "run"
    code, err = run_main(monkeypatch, capsys, "vae", "train", "-c", str(generated), "-o", str(run))
    assert code == 0, err
    out_json = tmp_path / "eval.json"
    code, err = run_main(
        monkeypatch,
        capsys,
        "vae",
        "eval",
        "-m",
        str(run / "model"),
        "-d",
        str(tmp_path / "data" / "sequences" / "docs.jsonl"),
        "--json",
        str(out_json),
        "--samples",
        "2",
    )
    assert code == 0, err
    results = orjson.loads(out_json.read_bytes())
    for key in ("nll", "iw_nll", "perplexity", "kl", "mi", "active_units", "token_accuracy"):
        assert key in results
    code, err = run_main(monkeypatch, capsys, "vae", "sample", "-m", str(run / "model"), "-n", "3")
    assert code == 0, err
    code, err = run_main(
        monkeypatch,
        capsys,
        "vae",
        "sample",
        "-m",
        str(run / "model"),
        "--interpolate",
        "the cat sat on the mat.",
        "a big dog ran quickly.",
    )
    assert code == 0, err


@pytest.mark.parametrize(
    ("problem", "fragments"),
    [
        ("sentences not a list", ["docs.jsonl:2", "sentences: expected a list of strings"]),
        ("negative free bits", ["kl.free_bits", "greater than or equal to 0 or 'auto'"]),
        ("bad criterion", ["success", "is not '<op> <number>'"]),
        ("no sources", ["data", "name at least one file"]),
        ("unknown key", ["unknown key 'latent_dims'", "did you mean 'latent_dim'"]),
        ("two documents", ["2 document(s) cannot be split"]),
        ("empty file", ["data: no sentences in"]),
    ],
)
def test_bad_data_and_configs_are_one_line(
    problem, fragments, tmp_path, tiny_bert, monkeypatch, capsys
):
    path = tiny_config(tmp_path, tiny_bert)
    config = yaml.safe_load(path.read_text())
    docs = tmp_path / "docs.jsonl"
    if problem == "sentences not a list":
        lines = docs.read_text().splitlines()
        lines[1] = json.dumps({"id": "x", "sentences": "one long string"})
        docs.write_text("\n".join(lines) + "\n")
    elif problem == "negative free bits":
        config["kl"] = {"free_bits": -1}
    elif problem == "bad criterion":
        config["success"] = {"val_nll": "about 4"}
    elif problem == "no sources":
        config["data"]["sequences"] = []
    elif problem == "unknown key":
        config["model"]["latent_dims"] = 3
    elif problem == "empty file":
        docs.write_text("")
    else:
        write_documents(docs, documents=2)
    path.write_text(yaml.safe_dump(config))
    code, err = run_main(monkeypatch, capsys, "vae", "build-data", "-c", str(path))
    assert_one_line_exit_2(code, err, *fragments)
