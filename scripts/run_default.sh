#!/usr/bin/env bash
# `make run`: the reward-model recipe on the bundled corpora, end to end.
set -euo pipefail
BIN=${BIN:-.venv/bin}
RUN=runs/btrm
mkdir -p "$RUN"
"$BIN/termwise" btrm gen-config -o "$RUN/config.yaml" --max-steps "${STEPS:-80}" --force
"$BIN/termwise" btrm train -c "$RUN/config.yaml" -o "$RUN/train" --overwrite
# Score held-out-style samples: the first rows of a few bundled corpora.
for corpus in brown_news reviews glossary_foldoc dialogue_chat; do
  head -n 3 "data/corpora/$corpus.jsonl"
done > "$RUN/sample.jsonl"
"$BIN/termwise" btrm score -m "$RUN/train/model" -i "$RUN/sample.jsonl" -o "$RUN/scored.jsonl"
"$BIN/python" - "$RUN/scored.jsonl" <<'PY'
import sys

import orjson
from rich.console import Console
from rich.table import Table

rows = [orjson.loads(line) for line in open(sys.argv[1], "rb")]
heads = list(rows[0]["scores"])
table = Table(title="Scores of sample texts (one row per text, one column per head)")
for column in ["source", *heads]:
    table.add_column(column)
for row in rows:
    source = row["id"].split("-")[0]
    table.add_row(source, *(f"{row['scores'][h]:+.2f}" for h in heads))
Console().print(table)
PY
