"""``termwise lvm eval``: the five gates of a saved model on any file of documents."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from termwise.errors import TermwiseUserError
from termwise.recipes.lvm.baselines import Ridge, trivial_predictors
from termwise.recipes.lvm.config import GateThresholds, LvmDataConfig
from termwise.recipes.lvm.data import build_corpus, make_windows
from termwise.recipes.lvm.gates import baseline_rows, run_gates
from termwise.recipes.lvm.model import load_lvm


def evaluate_file(model_dir: Path, path: Path, console: Console) -> dict[str, Any]:
    """Every document of ``path`` is in-distribution (no split); the run's OOD files, when
    they still exist, feed gate E. The trivial predictors (with the ridge the run fitted,
    when the model folder has it) are judged on the same windows. Embeddings are cached
    beside the model."""
    model, manifest = load_lvm(model_dir)
    cache_dir = model_dir.parent / f".eval-{path.stem}"
    temporary = None
    if not os.access(model_dir.parent, os.W_OK | os.X_OK):  # a read-only model: no cache
        temporary = tempfile.TemporaryDirectory(prefix="termwise-eval-")
        cache_dir = Path(temporary.name) / "cache"
    ood = [Path(p) for p in manifest.ood if Path(p).is_file()]
    data = LvmDataConfig(
        sequences=[path],
        ood=ood,
        backbone=Path(manifest.backbone),
        context=manifest.context,
        offset=manifest.offset,
        val_fraction=0.49,
        cache_dir=cache_dir,
    )
    try:
        corpus = build_corpus(data, console)
    except TermwiseUserError as error:  # about the file given with -d, not a config field
        where = error.path or str(path)
        raise TermwiseUserError(
            error.reason, path=where, line=error.line, field=error.field
        ) from None
    finally:
        if temporary is not None:
            temporary.cleanup()
    inside = corpus.documents("train") + corpus.documents("val")
    windows = make_windows(corpus, inside, manifest.context, manifest.offset)
    outside = corpus.documents("ood")
    ood_windows = (
        make_windows(corpus, outside, manifest.context, manifest.offset) if outside else None
    )
    baselines = baseline_rows(trivial_predictors(Ridge.load(model_dir)), corpus, windows)
    return run_gates(model, corpus, windows, ood_windows, GateThresholds(), baselines=baselines)
