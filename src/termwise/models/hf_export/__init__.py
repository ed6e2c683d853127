"""A termwise scorer as a plain Hugging Face directory that transformers loads without termwise:
``AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)`` (the
architecture, :mod:`.modeling_termwise`, travels in the directory as its ``auto_map`` code).

No standard sequence-classification head holds termwise's (pooling, then an RMSNorm, then
a Linear, a soft cap and a per-label level), so the directory carries that one small file;
the backbone's weights are its own architecture's, LoRA merged in.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from torch import Tensor, nn

from termwise.data.outputs import TEMPORARY_MARKER, atomic_directory
from termwise.errors import TermwiseUserError
from termwise.trainer.run_dir import check_replaceable

MODELING = "modeling_termwise.py"
RECORD = ".termwise-export.json"  # the names this export wrote: --force keeps the others
ARCHITECTURE = "TermwiseRewardModel"
TEMPLATE = Path(__file__).with_name(MODELING)


@dataclass
class ScoringHead:
    """What turns the backbone's hidden states into one score per label."""

    norm: nn.RMSNorm
    linear: nn.Linear
    labels: list[str]
    pooling: str
    cap: float  # soft tanh cap; 0: none
    level: Tensor | None  # [2, labels]: scale and offset after the cap; None: none
    input_format: str  # how a caller encodes a text, for people (config.termwise_input)


def is_export(path: Path) -> bool:
    """Whether ``path`` is a directory this module wrote (its config names our code)."""
    try:
        config = orjson.loads((path / "config.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    return (
        (path / MODELING).is_file()
        and isinstance(auto_map, dict)
        and any(str(v).startswith("modeling_termwise.") for v in auto_map.values())
    )


def check_export_output(output: Path, model: Path, force: bool) -> None:
    """Refuse, before loading anything, an output that would replace what the user has."""
    check_replaceable(output, [model], option="export")
    parent = next((p for p in output.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise TermwiseUserError(f"-o: {parent} is a file, not a directory", path=output)
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise TermwiseUserError(f"-o: cannot write in {parent} (permissions)", path=output)
    if output.resolve() in model.resolve().parents or model.resolve() in output.resolve().parents:
        raise TermwiseUserError(
            "-o is inside the model (or holds it); export elsewhere", path=output
        )
    if not output.exists() or (output.is_dir() and not any(output.iterdir())):
        return
    if not is_export(output):
        raise TermwiseUserError(
            "exists and is not a termwise export; termwise replaces only its own exports "
            "(choose a new folder)",
            path=output,
        )
    if not force:
        raise TermwiseUserError("holds an earlier export; pass --force to replace it", path=output)
    refuse_foreign_entries(output, recorded_files(output))


def recorded_files(directory: Path) -> set[str]:
    """The names an export recorded writing (none for one written before the record)."""
    try:
        files = orjson.loads((directory / RECORD).read_bytes()).get("files", [])
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return set()
    return {name for name in files if isinstance(name, str)} if isinstance(files, list) else set()


def refuse_foreign_entries(output: Path, ours: set[str]) -> None:
    """Replacing an export deletes it whole: refuse while it holds anything termwise did
    not write there (a user's notes, an eval file)."""
    foreign = sorted(p.name for p in output.iterdir() if p.name not in ours | {RECORD})
    if foreign and ours:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise TermwiseUserError(
            f"holds {len(foreign)} entries the export did not write ({shown}); move them out "
            "before --force, or export to a new folder",
            path=output,
        )


def export_scorer(directory: Path, backbone: nn.Module, tokenizer: Any, head: ScoringHead) -> None:
    """Write ``directory``: config.json (the backbone's, with the labels, the head's
    settings and ``auto_map``), model.safetensors, the tokenizer and :data:`MODELING`.
    ``backbone`` is a plain transformers model (adapters merged)."""
    from safetensors.torch import save_file

    config: Any = copy.deepcopy(getattr(backbone, "config"))  # noqa: B009 (a transformers model)
    labels = list(head.labels)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.architectures = [ARCHITECTURE]
    config.auto_map = {"AutoModelForSequenceClassification": f"modeling_termwise.{ARCHITECTURE}"}
    config.termwise_pooling = head.pooling
    config.termwise_cap = float(head.cap)
    config.termwise_level = None if head.level is None else head.level.tolist()
    config.termwise_input = head.input_format
    # Copies: a tensor shared by two names (tied embeddings) cannot be saved twice.
    state = {
        f"backbone.{k}": v.detach().clone().contiguous() for k, v in backbone.state_dict().items()
    }
    state["norm.weight"] = head.norm.weight.detach().clone()
    state["score.weight"] = head.linear.weight.detach().clone()
    state["score.bias"] = head.linear.bias.detach().clone()
    with atomic_directory(directory) as partial:
        config.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        save_file(state, str(partial / "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(TEMPLATE, partial / MODELING)
        written = {p.name for p in partial.iterdir() if p.name != TEMPORARY_MARKER}
        (partial / RECORD).write_bytes(orjson.dumps({"files": sorted(written)}))
        if directory.is_dir():  # an export from before the record: what this one writes
            refuse_foreign_entries(directory, written | recorded_files(directory))
