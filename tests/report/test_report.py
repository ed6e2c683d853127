"""``termwise report``: a page from a tiny run of each recipe; every image decodes; a run
that is still writing, or misses files, still gets a page."""

import base64
import html
import io
import re

import pytest
import yaml
from PIL import Image

from tests.cli.test_cli import assert_one_line_exit_2, run_main


def images(page: str) -> list[Image.Image]:
    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    decoded = []
    for data in found:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()  # decodes every pixel: a truncated PNG fails here
        decoded.append(image)
    return decoded


def report_of(run, monkeypatch, capsys, *extra):
    out = run.parent / f"{run.name}.html"
    code, err = run_main(monkeypatch, capsys, "report", str(run), "-o", str(out), *extra)
    assert code == 0, err
    return html.unescape(out.read_text())


def train(monkeypatch, capsys, recipe, config, run):
    code, err = run_main(monkeypatch, capsys, recipe, "train", "-c", str(config), "-o", str(run))
    assert code == 0, err
    return run


def test_demo_run_page_has_the_curves_and_the_findings(tmp_path, monkeypatch, capsys):
    args = ["demo", "free-bits", "--max-steps", "60", "--run-dir", str(tmp_path / "demo")]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 0, err
    page = report_of(tmp_path / "demo" / "run1", monkeypatch, capsys)
    for title in ("Each term's share", "Raw term values", "Free bits", "Findings", "Config"):
        assert title in page
    assert "free_bits.all_free" in page and "free_bits: 0.1" in page  # the parent's config
    assert len(images(page)) >= 4
    assert "no AutoScale weight in this run" in page  # a missing section says so


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["vae", "lvm", "bayes-clf", "btrm", "pref"])
def test_every_recipe_run_gets_a_page(recipe, tmp_path, tiny_bert, monkeypatch, capsys):
    run = tmp_path / "run"
    if recipe == "vae":
        from tests.recipes.vae.conftest import tiny_config

        train(monkeypatch, capsys, "vae", tiny_config(tmp_path, tiny_bert), run)
        expected = ["Free bits: KL raw", "Evaluations during training", "Evaluation"]
    elif recipe == "lvm":
        from tests.recipes.lvm.test_recipe import tiny_lvm_config

        train(monkeypatch, capsys, "lvm", tiny_lvm_config(tmp_path, tiny_bert), run)
        expected = ["Auto-scaled weights", "Gates (lvm)"]
    elif recipe == "bayes-clf":
        from tests.recipes.bayes_clf.test_recipe import series_csv, write_config

        series_csv(tmp_path / "s.csv", signal=True)
        config = write_config(tmp_path, tmp_path / "s.csv", prior_sigma=1.0, kl_weight=0.001)
        text = config.read_text().replace("max_steps: 300", "max_steps: 60")
        config.write_text(text)
        train(monkeypatch, capsys, "bayes-clf", config, run)
        expected = ["Each term's share", "Evaluation", "test_accuracy"]
    elif recipe == "btrm":
        from tests.recipes.btrm.conftest import write_tiny_config

        train(monkeypatch, capsys, "btrm", write_tiny_config(tmp_path, tiny_bert), run)
        expected = ["Per-head AUC (btrm)"]
    else:
        from tests.recipes.pref.test_cli import _gen

        train(monkeypatch, capsys, "pref", _gen(tmp_path, "bt", tiny_bert), run)
        expected = ["Calibration and categories (pref)", "confidence bin"]
    page = report_of(run, monkeypatch, capsys)
    for title in ["Each term's share", "Learning rate and gradient norm", "Config", *expected]:
        assert title in page, title
    assert len(images(page)) >= 3


def test_a_run_still_writing_gets_a_page_with_notes(tmp_path, monkeypatch, capsys):
    args = ["demo", "free-bits", "--max-steps", "60", "--run-dir", str(tmp_path / "demo")]
    code, err = run_main(monkeypatch, capsys, *args)
    assert code == 0, err
    run = tmp_path / "demo" / "run1"
    (run / "report.json").unlink()
    with (run / "scalars.csv").open("a") as handle:
        handle.write("61,kl.sha")  # a row cut off mid-write
    with (run / "health.jsonl").open("a") as handle:
        handle.write('{"step": 61, "sever')
    (tmp_path / "demo" / "config.yaml").unlink()
    page = report_of(run, monkeypatch, capsys)
    assert "in progress or stopped" in page and "1 row(s) did not parse" in page
    assert "1 unreadable line(s) skipped" in page and "no config.yaml" in page
    assert len(images(page)) >= 3
    assert yaml is not None


@pytest.mark.parametrize(
    ("name", "content", "section"),
    [
        ("gates.json", {"passed": {"A": False, "B": True}}, "Gates (lvm)"),
        ("result.json", {"name": "configured", "metrics": {"test_accuracy": 0.61}}, "0.61"),
    ],
)
def test_a_run_from_before_eval_json_still_gets_its_results(
    name, content, section, tmp_path, monkeypatch, capsys
):
    import orjson

    run = tmp_path / "old-run"
    run.mkdir()
    (run / name).write_bytes(orjson.dumps(content))
    page = report_of(run, monkeypatch, capsys)
    assert section in page
    assert f"{name}: the results of a run from before eval.json" in page


def test_bad_report_input_is_one_line(tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, "report", str(tmp_path / "missing"))
    assert_one_line_exit_2(code, err, "not found: expected a run directory")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.html").write_text("old")
    code, err = run_main(monkeypatch, capsys, "report", str(tmp_path / "run"))
    assert_one_line_exit_2(code, err, "pass --force")
    assert (tmp_path / "run" / "report.html").read_text() == "old"
    (tmp_path / "run" / "scalars.csv").write_text("step,name,value\n")
    args = ["report", str(tmp_path / "run"), "-o", str(tmp_path / "run" / "scalars.csv")]
    code, err = run_main(monkeypatch, capsys, *args, "--force")
    assert_one_line_exit_2(code, err, "is the input file")
    (tmp_path / "run" / "scalars.csv").unlink()
    code, err = run_main(monkeypatch, capsys, "report", str(tmp_path / "run"), "--force")
    assert code == 0, err
    page = html.unescape((tmp_path / "run" / "report.html").read_text())
    assert "no scalars.csv" in page and images(page) == []
    code, err = run_main(monkeypatch, capsys, "report", str(tmp_path / "run"))
    assert code == 0, err  # its own page, marked when written: rewritten without --force


def test_a_report_with_an_eval_json_of_another_shape_still_gets_a_page(
    tmp_path, monkeypatch, capsys
):
    import orjson

    run = tmp_path / "run"
    run.mkdir()
    (run / "eval.json").write_bytes(orjson.dumps({"recipe": "pref", "reliability": [7]}))
    page = report_of(run, monkeypatch, capsys)
    assert "eval.json: a field of an unexpected shape" in page
