import json
from pathlib import Path

import numpy as np
import pytest

from termwise.config import load_yaml_config, write_config
from termwise.errors import TermwiseUserError
from termwise.recipes.btrm.config import HEADER, BtrmConfig, HeldoutFold, default_config
from termwise.recipes.btrm.data import (
    MembershipTable,
    build_table,
    head_sources,
    heldout_groups,
    is_heldout,
    kept_out_for_levelled_heads,
    level_rows,
    level_sample,
    plan_batches,
)

CORPORA = Path("data/corpora")


def test_default_config_over_bundled_data_validates(tmp_path):
    path = tmp_path / "c.yaml"
    write_config(path, default_config(CORPORA), BtrmConfig, HEADER)
    config = load_yaml_config(path, BtrmConfig)
    assert config == default_config(CORPORA)  # the written YAML reads back the same
    assert [h.name for h in config.heads] == [
        "fiction",
        "news",
        "learned",
        "government",
        "reviews",
        "multiturn_dialogue",
        "glossary",
    ]
    assert len(config.heads[0].positive_sources) == 5


def test_gen_config_names_missing_corpora(tmp_path):
    with pytest.raises(TermwiseUserError, match="missing corpora: brown_adventure.jsonl"):
        default_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "heads:\n  - name: a\n    positive_sources:\n      - {path: nope.jsonl}\n",
            ":4: heads.0.positive_sources.0.path: file not found",
        ),
        ("heads:\n  - name: a\n    positive_sources: []\n", ":3: heads.0.positive_sources"),
        ("hedas: []\n", ":1: hedas: unknown key 'hedas' (did you mean 'heads'?)"),
    ],
)
def test_config_errors(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(TermwiseUserError) as info:
        load_yaml_config(path, BtrmConfig)
    assert expected in str(info.value)


def small_config(tmp_path, **overrides) -> BtrmConfig:
    path = tmp_path / "c.yaml"
    write_config(path, default_config(CORPORA), BtrmConfig, HEADER)
    config = load_yaml_config(path, BtrmConfig)
    assert config == default_config(CORPORA)  # the written YAML reads back the same
    return config.model_copy(update=overrides)


def test_positives_are_never_negatives_and_cross_corpus_adds_soft_negatives(tmp_path):
    config = small_config(tmp_path)
    for positives, negatives in head_sources(config):
        assert not {s.key for s in positives} & {s.key for s in negatives}
    fiction_negatives = {s.path.stem: s.neg_tier for s in head_sources(config)[0][1]}
    assert fiction_negatives["brown_news"] == "soft_neg"  # another head's positive
    assert fiction_negatives["web_c4"] == "furthest_neg"  # shared
    off = config.model_copy(update={"cross_corpus_negatives": None})
    assert "brown_news" not in {s.path.stem for s in head_sources(off)[0][1]}


def test_table_labels_and_stable_heldout(tmp_path):
    config = small_config(tmp_path)
    table = build_table(config)
    news = table.heads.index("news")
    is_news = np.array([k.startswith(str(CORPORA / "brown_news")) for k in table.source])
    assert table.positive[is_news, news].all() and not table.positive[~is_news, news].any()
    assert (table.negative_tier[is_news, news] == 0).all()
    assert (table.negative_tier[is_news, table.heads.index("fiction")] == 1).all()
    assert is_heldout("row-1", "src", 0.15) == is_heldout("row-1", "src", 0.15)
    assert 0.05 < table.heldout.mean() < 0.3


def test_planned_batches_keep_positives_and_negatives(tmp_path):
    table = build_table(small_config(tmp_path))
    rows = table.split(heldout=False)
    lengths = np.array([len(t) for t in table.texts])
    plan = plan_batches(table, rows, lengths, batch_size=16, batches=40, seed=0)
    assert len(plan) == 40 and all(len(b) == 16 for b in plan)
    for batch in plan:
        assert table.positive[batch].any()
        assert (table.negative_tier[batch] > 0).any()
        assert set(batch) <= set(rows)
    active = [(table.positive[b].any(0) & (table.negative_tier[b] > 0).any(0)).mean() for b in plan]
    assert np.mean(active) > 0.7  # most heads are active most steps


def test_scoring_length_re_encodes_longer(tiny_bert):
    from types import SimpleNamespace

    import numpy as np
    from transformers import AutoTokenizer

    from termwise.models.backbone import BackboneConfig
    from termwise.recipes.btrm.prepared import Prepared, at_scoring_length

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    texts = ["word " * 300, "short"]
    table = SimpleNamespace(texts=texts)
    config = SimpleNamespace(
        meta_prompt="Is it?", backbone=BackboneConfig(max_length=64, score_max_length=128)
    )
    ids = [[0] * 64, [0] * 8]
    prepared = Prepared(table, tokenizer, ids, np.array([64, 8]), tiny_bert)  # type: ignore[arg-type]
    longer = at_scoring_length(prepared, config)  # type: ignore[arg-type]
    assert longer.lengths.tolist()[0] == 128 and longer.lengths[1] < 16
    same = SimpleNamespace(meta_prompt="Is it?", backbone=BackboneConfig(max_length=64))
    assert at_scoring_length(prepared, same) is prepared  # type: ignore[arg-type]


def synthetic_table(sizes: dict[str, int], head_of: dict[str, int | None]) -> MembershipTable:
    """Sources of the given sizes; ``head_of[source]`` is the head it is a positive of
    (None: a furthest negative of every head)."""
    source = np.concatenate([[key] * n for key, n in sizes.items()])
    heads = sorted({h for h in head_of.values() if h is not None})
    positive = np.zeros((len(source), len(heads)), dtype=bool)
    negative_tier = np.zeros_like(positive, dtype=np.int8)
    for key, head in head_of.items():
        if head is None:
            negative_tier[source == key] = 3
        else:
            positive[source == key, head] = True
            negative_tier[source == key] = np.where(positive[source == key], 0, 1)
    texts = ["text"] * len(source)
    return MembershipTable(
        [f"h{h}" for h in heads],
        texts,
        source,
        [None] * len(source),
        np.zeros(len(source), dtype=bool),
        positive,
        negative_tier,
    )


@pytest.mark.parametrize("balance", [True, False])
def test_balanced_sampling_gives_small_sources_their_share(balance):
    sizes = {"big": 900, "small": 100, "other": 500, "neg_big": 800, "neg_small": 200}
    table = synthetic_table(
        sizes, {"big": 0, "small": 0, "other": 1, "neg_big": None, "neg_small": None}
    )
    rows = np.arange(len(table.texts))
    plan = plan_batches(
        table, rows, np.ones(len(rows)), batch_size=8, batches=500, seed=0, balance_sources=balance
    )
    picked = np.concatenate(plan)
    head0 = picked[table.positive[picked, 0]]
    small_share = np.mean(table.source[head0] == "small")
    negatives = picked[~table.positive[picked].any(1)]
    neg_small_share = np.mean(table.source[negatives] == "neg_small")
    if balance:  # two sources each: half and half
        assert abs(small_share - 0.5) < 0.05 and abs(neg_small_share - 0.5) < 0.05
    else:  # by rows: a tenth and a fifth
        assert abs(small_share - 0.1) < 0.04 and abs(neg_small_share - 0.2) < 0.04


def test_heldout_groups_take_whole_documents():
    groups = [f"doc{i}" for i in range(5)]
    held = heldout_groups(groups, "salt", 0.15)
    assert len(held) == 1 and held == heldout_groups(groups[::-1], "salt", 0.15)
    assert heldout_groups(["only"], "salt", 0.5) == set()  # would leave nothing to train on
    assert len(heldout_groups(["a", "b"], "salt", 0.9)) == 1  # never all
    assert len(heldout_groups([f"d{i}" for i in range(40)], "salt", 0.15)) == 6


def test_folds_hold_out_every_document_once_and_spread_each_source():
    groups = [f"doc{i}" for i in range(23)]
    folds = [heldout_groups(groups, "salt", 0.15, HeldoutFold(index=k, folds=5)) for k in range(5)]
    assert sorted(g for fold in folds for g in fold) == sorted(groups)  # each once
    assert sorted(len(fold) for fold in folds) == [4, 4, 5, 5, 5]
    rows = [f"row{i}" for i in range(400)]
    by_row = [
        {r for r in rows if is_heldout(r, "src", 0.15, HeldoutFold(index=k, folds=4))}
        for k in range(4)
    ]
    assert sorted(r for fold in by_row for r in fold) == sorted(rows)
    assert all(60 < len(fold) < 140 for fold in by_row)


def test_a_fold_index_outside_the_folds_is_refused():
    with pytest.raises(ValueError, match="index must be below folds"):
        HeldoutFold(index=5, folds=5)


def test_document_split_in_the_table(tmp_path):
    table = build_table(small_config(tmp_path))
    source_key = str(CORPORA / "brown_learned.jsonl") + "|"
    rows = np.flatnonzero(table.source == source_key)
    assert len(rows)
    documents = {}
    for line, row in zip(
        (CORPORA / "brown_learned.jsonl").read_text().splitlines(), rows, strict=True
    ):
        documents.setdefault(json.loads(line)["source"], set()).add(bool(table.heldout[row]))
    assert all(len(flags) == 1 for flags in documents.values())  # a document is on one side
    assert any(flags == {True} for flags in documents.values())


def test_level_rows_take_whole_documents_among_the_training_rows():
    groups = [f"doc{i // 3}" for i in range(60)]  # 20 documents of 3 rows
    table = synthetic_table({"x": 60}, {"x": 0})
    table.group = np.array(groups)
    rows = np.arange(0, 60)
    chosen = level_rows(table, rows, 0.1)
    held = {groups[row] for row in chosen}
    assert len(held) == 2 and len(chosen) == 6  # a tenth of the documents, whole
    assert np.array_equal(chosen, level_rows(table, rows[::-1], 0.1)[::-1])
    assert set(level_rows(table, rows[:30], 0.1)) <= set(rows[:30])  # only among the given
    assert len(level_rows(table, rows, 0.0)) == 0


def test_kept_out_documents_of_unlevelled_heads_return_to_training():
    # head 0: 30 documents kept out (levelled); head 1: 3 (raw); "neg": no head's positive
    table = synthetic_table({"big": 60, "small": 6, "neg": 10}, {"big": 0, "small": 1, "neg": None})
    table.group = np.array(
        [f"big{i // 2}" for i in range(60)]
        + [f"small{i // 2}" for i in range(6)]
        + [f"neg{i}" for i in range(10)]
    )
    table.positive[60, 0] = True  # small0 is a positive of the levelled head too
    kept_out = np.arange(76)
    kept = kept_out_for_levelled_heads(table, kept_out, minimum=20)
    returned = set(table.group[np.setdiff1d(kept_out, kept)])
    assert returned == {"small1", "small2"}  # whole documents, only the unlevelled head's
    assert len(kept) == 76 - 4
    assert len(kept_out_for_levelled_heads(table, kept_out, minimum=3)) == 76  # both levelled


def test_level_sample_takes_positives_of_every_head_and_is_fixed(tmp_path):
    table = build_table(small_config(tmp_path, max_rows_per_source=60))
    rows = table.split(heldout=False)
    sample = level_sample(table, rows, per_head=5, others=20)
    assert set(sample) <= set(rows) and (np.diff(sample) > 0).all()
    for h in range(len(table.heads)):
        assert table.positive[sample, h].sum() >= min(5, table.positive[rows, h].sum())
    assert 20 <= len(sample) <= 20 + 5 * len(table.heads)
    assert np.array_equal(sample, level_sample(table, rows, per_head=5, others=20))
    assert len(level_sample(table, rows, per_head=10**6, others=10**6)) == len(rows)
