"""Documents rebuilt from corpus passages: id order, unit splitting, gaps, bad ids."""

import json

import pytest
from rich.console import Console

from termwise.errors import TermwiseUserError
from termwise.recipes.lvm.config import LvmConfig, LvmDataConfig, default_config
from termwise.recipes.lvm.data import build_corpus, read_documents
from termwise.recipes.lvm.passages import split_units
from termwise.recipes.lvm.recipe import training_documents
from termwise.sample_data import sample_path
from tests.cli.test_cli import assert_one_line_exit_2, run_main

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def sentences(first, last):
    return " ".join(f"Sentence {i} is here." for i in range(first, last + 1))


def test_passages_are_rebuilt_in_id_order_whatever_the_file_order(tmp_path):
    path = write_rows(
        tmp_path / "p.jsonl",
        [
            {"id": "brown-ca01-s003-004", "text": sentences(3, 4)},
            {"id": "brown-cb02-s000-001", "text": sentences(0, 1)},
            {"id": "brown-ca01-s000-002", "text": sentences(0, 2)},
        ],
    )
    documents = {d.name: d for d in read_documents(path)}
    assert set(documents) == {"p.jsonl:brown-ca01", "p.jsonl:brown-cb02"}
    expected = [f"Sentence {i} is here." for i in range(5)]
    assert documents["p.jsonl:brown-ca01"].sentences == expected


def test_a_gap_splits_the_document_into_parts_of_one_source(tmp_path):
    path = write_rows(
        tmp_path / "p.jsonl",
        [
            {"id": "movie_reviews-pos-cv1-s000-001", "text": sentences(0, 1)},
            {"id": "movie_reviews-pos-cv1-s005-006", "text": sentences(5, 6)},
        ],
    )
    parts = read_documents(path)
    assert [len(p.sentences) for p in parts] == [2, 2]
    assert len({p.name for p in parts}) == 2
    assert {p.source for p in parts} == {"p.jsonl:movie_reviews-pos-cv1"}


def test_lines_are_the_units_of_a_u_range(tmp_path):
    path = write_rows(
        tmp_path / "c4.jsonl",
        [
            {"id": "c4demo-d003-u002-003", "text": "third line. Still third\nfourth line"},
            {"id": "c4demo-d003-u000-001", "text": "first line\n\nsecond line"},
        ],
    )
    (document,) = read_documents(path)
    assert document.sentences == [
        "first line",
        "second line",
        "third line. Still third",
        "fourth line",
    ]


def test_sentences_are_cut_to_the_count_the_id_gives():
    # Lower-case text (the movie reviews) and an abbreviation: the likeliest ends are kept.
    text = "mr. smith came late. he sat down... and smiled. then it rained."
    assert split_units(text, "s", 3) == [
        "mr. smith came late.",
        "he sat down... and smiled.",
        "then it rained.",
    ]
    assert split_units("Mr. Smith came. He sat.", "s", 2) == ["Mr. Smith came.", "He sat."]
    assert split_units("One sentence with no end", "s", 3) == ["One sentence with no end"]


@pytest.mark.parametrize(
    ("rows", "line", "says"),
    [
        ([{"id": "brown-ca01", "text": "A."}], 1, "does not parse as"),
        ([{"text": "A."}], 1, "missing"),
        ([{"id": "x-s005-002", "text": "A."}], 1, "ends (2) before it starts (5)"),
        (
            [{"id": "x-s000-003", "text": "A. B."}, {"id": "x-s003-004", "text": "C. D."}],
            2,
            "overlaps 'x-s000-003' (line 1)",
        ),
        ([{"id": "x-s000-001", "text": 7}], 1, "expected a string"),
    ],
)
def test_a_bad_passage_names_its_file_line_and_field(tmp_path, rows, line, says):
    path = write_rows(tmp_path / "bad.jsonl", rows)
    with pytest.raises(TermwiseUserError) as caught:
        read_documents(path)
    message = str(caught.value)
    assert f"bad.jsonl:{line}" in message and says in message
    assert ("text" if says == "expected a string" else "id") in message


def test_the_prose_mix_trains_on_corpora_passages_with_wikitext_out_of_distribution():
    config = default_config(sample_path(), "prose-mix")
    assert isinstance(config, LvmConfig)
    names = {p.name for p in config.data.sequences}
    assert {"reviews.jsonl", "web_c4.jsonl", "brown_news.jsonl"} <= names
    assert all(p.parent.name == "corpora" for p in config.data.sequences)
    assert {p.parent.name for p in config.data.ood} == {"sequences"}
    documents = [d for path in config.data.sequences for d in read_documents(path)]
    assert len(documents) > 0 and all(d.sentences for d in documents)


def test_gen_config_refuses_an_unknown_document_set_in_one_line(tmp_path, monkeypatch, capsys):
    output = str(tmp_path / "c.yaml")
    code, err = run_main(
        monkeypatch, capsys, "lvm", "gen-config", "--documents", "news", "--output", output
    )
    assert_one_line_exit_2(code, err, "prose-mix")
    assert not (tmp_path / "c.yaml").exists()


def test_parts_of_a_document_stay_on_one_side_of_every_split(tmp_path, tiny_bert):
    rows = []
    for d in range(12):  # every document in two parts, a gap between them
        rows.append({"id": f"doc{d}-s000-005", "text": sentences(0, 5)})
        rows.append({"id": f"doc{d}-s009-014", "text": sentences(9, 14)})
    path = write_rows(tmp_path / "p.jsonl", rows)
    data = LvmDataConfig(
        sequences=[path], backbone=tiny_bert, val_fraction=0.25, cache_dir=tmp_path / "cache"
    )
    corpus = build_corpus(data, QUIET)
    assert len(corpus.names) == 24
    train, val = corpus.documents("train"), corpus.documents("val")
    groups = {split: {corpus.group(i) for i in docs} for split, docs in (("t", train), ("v", val))}
    assert len(groups["v"]) == 3 and not groups["t"] & groups["v"]
    half = training_documents(corpus, 0.5)
    assert len(half) == 2 * len({corpus.group(i) for i in half}) == 10  # ceil(9 / 2) = 5 documents
