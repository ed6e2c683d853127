"""A saved model directory, shared by the reward and preference models.

``MANIFEST.json`` (validated by a strict model, like a config), ``tokenizer/``, either
``adapter/`` (PEFT LoRA weights over a base backbone at a recorded local path) or
``backbone/`` (full weights, safetensors), and the head weights (safetensors). The
directory is written beside its target and renamed into place, so a run killed while
saving leaves the previous model (or none), never half of one. Whatever is wrong with a
directory when loading it is one :class:`TermwiseUserError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson
from pydantic import Field, ValidationError

from termwise.config import StrictModel
from termwise.data.jsonl import atomic_directory, write_bytes_atomic
from termwise.errors import TermwiseUserError

if TYPE_CHECKING:
    from torch import Tensor, nn

ManifestT = TypeVar("ManifestT", bound=StrictModel)


class SavedManifest(StrictModel):
    """What every saved model records about itself."""

    format: str = Field(..., description="Format tag, e.g. termwise-reward/1.")
    backbone_path: str = Field(..., description="The base backbone (LoRA models load it).")
    lora: bool = Field(..., description="adapter/ (LoRA) or backbone/ (full weights).")
    pooling: Literal["mean", "last"] = Field(..., description="How tokens become one vector.")
    max_length: int = Field(..., ge=1, description="Tokens per text when scoring.")
    train_max_length: int | None = Field(None, ge=1, description="Tokens per text in training.")


def write_model_dir(
    directory: Path,
    backbone: Any,
    tokenizer: Any,
    heads: nn.Module,
    weights_name: str,
    manifest_name: str,
    manifest: SavedManifest,
) -> None:
    """Save everything into ``directory`` (replacing an older model there only once the
    new one is complete)."""
    from safetensors.torch import save_file

    with atomic_directory(directory) as partial:
        tokenizer.save_pretrained(str(partial / "tokenizer"))
        if manifest.lora:
            backbone.save_pretrained(str(partial / "adapter"))
        else:
            backbone.save_pretrained(str(partial / "backbone"), safe_serialization=True)
        save_file(sparse_rows(heads.state_dict()), str(partial / weights_name))
        (partial / manifest_name).write_bytes(manifest_bytes(manifest))


def manifest_bytes(manifest: SavedManifest) -> bytes:
    return orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def rewrite_manifest(directory: Path, name: str, manifest: SavedManifest) -> None:
    """Replace a saved model's manifest alone (e.g. a refitted calibration), atomically."""
    write_bytes_atomic(directory / name, manifest_bytes(manifest))


def read_manifest(
    directory: Path, name: str, model: type[ManifestT], expected_format: str, what: str
) -> ManifestT:
    """The manifest of a saved model, validated; one clear line for any problem."""
    if not directory.is_dir():
        reason = "is a file, expected" if directory.exists() else "not found: expected"
        raise TermwiseUserError(f"{reason} a saved {what} directory", path=directory)
    path = directory / name
    if not path.is_file():
        raise TermwiseUserError(f"not a termwise {what} (no {name})", path=directory)
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise TermwiseUserError(f"not valid JSON ({error})", path=path) from None
    if not isinstance(data, dict):
        raise TermwiseUserError(
            f"expected a JSON object, got {type(data).__name__}", path=path
        ) from None
    if data.get("format") != expected_format:
        raise TermwiseUserError(
            f"unsupported format {data.get('format')!r} (expected {expected_format!r})",
            path=path,
            field="format",
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        reason = first["msg"].removeprefix("Value error, ")
        raise TermwiseUserError(reason, path=path, field=field) from None


def restore_backbone(directory: Path, manifest: SavedManifest) -> tuple[nn.Module, Any, Any]:
    """The backbone (with its adapter), its Hugging Face config and the tokenizer."""
    from termwise.models.backbone import load_backbone, load_tokenizer

    tokenizer_dir = directory / "tokenizer"
    if not tokenizer_dir.is_dir():
        raise TermwiseUserError(
            "missing tokenizer/ (an incomplete model directory)", path=directory
        )
    part = directory / ("adapter" if manifest.lora else "backbone")
    if not part.is_dir():
        raise TermwiseUserError(
            f"missing {part.name}/ (an incomplete model directory)", path=directory
        )
    try:
        tokenizer = load_tokenizer(tokenizer_dir)
        if manifest.lora:
            from peft import PeftModel

            base, config = load_backbone(manifest.backbone_path)
            return PeftModel.from_pretrained(base, str(part)), config, tokenizer
        backbone, config = load_backbone(part)
        return backbone, config, tokenizer
    except TermwiseUserError:
        raise
    except Exception as error:  # library errors on corrupt files vary in type
        raise TermwiseUserError(f"cannot load: {_first_line(error)}", path=part) from None


def load_head_weights(module: nn.Module, path: Path) -> None:
    """Head weights into ``module`` (dense, or as :func:`sparse_rows` stored them); a
    missing, corrupt or mismatched file (e.g. another number of heads than the manifest
    names) is one clear line."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise TermwiseUserError(f"missing {path.name}", path=path.parent)
    try:
        module.load_state_dict(dense_rows(load_file(str(path))), strict=True)
    except Exception as error:  # safetensors and torch raise several types
        raise TermwiseUserError(
            f"corrupt or not matching the manifest: {_first_line(error)}", path=path
        ) from None


SPARSE_MIN_ROWS = 65_536  # a hashed n-gram table: most of its rows are never touched
ROWS, VALUES, SHAPE = "::rows", "::values", "::shape"


def sparse_rows(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with every table of at least ``SPARSE_MIN_ROWS`` rows stored as its
    non-zero rows (their indices, their values, the full shape): a lexical table of 2^20
    buckets keeps only the buckets training saw.

    >>> import torch
    >>> table = torch.zeros(70_000, 2); table[5] = 1.0
    >>> stored = sparse_rows({"bag.weight": table, "bias": torch.ones(2)})
    >>> sorted(stored), stored["bag.weight::rows"].tolist()
    (['bag.weight::rows', 'bag.weight::shape', 'bag.weight::values', 'bias'], [5])
    >>> torch.equal(dense_rows(stored)["bag.weight"], table)
    True
    """
    import torch

    out: dict[str, Tensor] = {}
    for name, tensor in state.items():
        if tensor.dim() in (1, 2) and tensor.shape[0] >= SPARSE_MIN_ROWS:
            used = tensor != 0 if tensor.dim() == 1 else (tensor != 0).any(dim=1)
            rows = used.nonzero().flatten()
            out[name + ROWS] = rows.to(torch.int32)
            out[name + VALUES] = tensor[rows].contiguous()
            out[name + SHAPE] = torch.tensor(tensor.shape, dtype=torch.int64)
        else:
            out[name] = tensor.contiguous()
    return out


def dense_rows(stored: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`sparse_rows` (a dense file passes through unchanged)."""
    import torch

    state = {k: v for k, v in stored.items() if not k.endswith((ROWS, VALUES, SHAPE))}
    for key in stored:
        if key.endswith(ROWS):
            name = key[: -len(ROWS)]
            values = stored[name + VALUES]
            table = torch.zeros(tuple(stored[name + SHAPE].tolist()), dtype=values.dtype)
            table[stored[key].long()] = values
            state[name] = table
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
