"""Atomic checkpoints: safetensors weights, optimizer state, RNG state and JSON metadata.

Layout of ``run_dir/checkpoints/step_00000100/``::

    model.safetensors     weights (or whatever the recipe's save_model hook writes)
    optimizer.pt          optimizer state dict (tensors and numbers: weights_only loads it)
    scheduler.pt          LR scheduler state dict (if any)
    rng.safetensors       torch CPU (and CUDA) generator states
    state.json            step, data position, Python/NumPy RNG, monitor state

A checkpoint is written into a temporary folder and renamed into place, then the
``latest`` pointer is replaced: a crash mid-write leaves the previous checkpoint intact.
Nothing is ever unpickled: ``torch.load(..., weights_only=True)`` only.

Under FSDP or DeepSpeed (``checkpoint_format``) the tensors go through Accelerate's
``save_state``/``load_state`` instead, beside the same ``state.json``. ``load_state`` reads
model, optimizer, scheduler and RNG files with ``weights_only=True`` (NumPy's RNG arrays
allow-listed), which keeps the rule; its ``register_for_checkpointing`` objects are loaded
with ``weights_only=False``, so termwise never registers any: recipe and callback state
stays in ``state.json``. termwise's own layout stays the default elsewhere because its
``save_model`` hook writes only the trainable parameters (a LoRA run's adapters, not the
frozen backbone ``save_state`` would copy into every checkpoint). Each checkpoint is read
in the layout it was written in, whatever the config says now.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from termwise.data.jsonl import replace_directory
from termwise.errors import TermwiseUserError

CHECKPOINTS = "checkpoints"
LATEST = "latest"
ModelSaver = Callable[[nn.Module, Path], None]
ACCELERATE_RNG = "random_states_*.pkl"  # what Accelerate's save_state always writes


def save_weights(model: nn.Module, directory: Path) -> None:
    """Default model saver: every parameter and buffer in ``model.safetensors``."""
    save_model(model, str(directory / "model.safetensors"))


def load_weights(model: nn.Module, directory: Path) -> None:
    """Default model loader, the inverse of :func:`save_weights` (strict)."""
    load_model(model, str(directory / "model.safetensors"))


def save_trainable(model: nn.Module, directory: Path) -> None:
    """Saver for adapter training: only parameters that train (LoRA, heads, norms). The
    frozen backbone is reloaded from its own path, so checkpoints stay small."""
    tensors = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, str(directory / "trainable.safetensors"))


def load_trainable(model: nn.Module, directory: Path) -> None:
    """Inverse of :func:`save_trainable`; every trainable parameter must be in the file."""
    tensors = load_file(str(directory / "trainable.safetensors"))
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(expected - set(tensors))
    if missing:
        raise TermwiseUserError(
            f"checkpoint lacks trainable parameters: {missing[:3]}", path=directory
        )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in tensors:
                parameter.copy_(tensors[name])


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{index}"] = state
    kind, keys, pos, has_gauss, cached = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state()
    )
    python_state = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "python": [python_state[0], list(python_state[1]), python_state[2]],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


class CheckpointManager:
    """Writes, finds and prunes the checkpoints of one run directory."""

    def __init__(self, run_dir: Path, keep: int = 2) -> None:
        self.root = run_dir / CHECKPOINTS
        self.keep = keep

    def latest(self) -> Path | None:
        named = self._pointer()
        if named is None or not re.fullmatch(r"step_\d+", named):  # only a checkpoint of ours
            return None
        path = self.root / named
        return path if path.is_dir() else None

    def _pointer(self) -> str | None:
        """What ``latest`` names (undecodable bytes shown, never a crash), or None."""
        pointer = self.root / LATEST
        if not pointer.is_file():
            return None
        return pointer.read_bytes().decode("utf-8", errors="replace").strip()

    def candidates(self) -> list[Path]:
        """Checkpoints to resume from, best first: the one ``latest`` names, then every
        other complete ``step_*`` folder, newest first."""
        steps = sorted((p for p in self.root.glob("step_*") if p.is_dir()), key=_step_of)
        latest = self.latest()
        ordered = ([latest] if latest is not None else []) + steps[::-1]
        return list(dict.fromkeys(ordered))

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        state: dict[str, Any],
        save_model_fn: ModelSaver = save_weights,
    ) -> Path:
        """One process's checkpoint: weights, optimizer, scheduler, RNG and state."""
        tmp = self.begin(step)
        save_model_fn(model, tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        tensors, rng_meta = rng_state()
        save_file(tensors, str(tmp / "rng.safetensors"))
        return self.commit(step, {**state, "rng": rng_meta})

    def begin(self, step: int) -> Path:
        """A fresh temporary folder for the checkpoint of ``step`` (main process)."""
        tmp = self.root / f".tmp-{_name(step)}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, step: int, state: dict[str, Any]) -> Path:
        """Write ``state.json``, rename the temporary folder into place, point ``latest``
        at it and prune old checkpoints (main process)."""
        name = _name(step)
        tmp, final = self.root / f".tmp-{name}", self.root / name
        (tmp / "state.json").write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        replace_directory(tmp, final)
        self._point_to(name)
        self._prune(keep=final)
        return final

    def update_state(self, checkpoint: Path, state: dict[str, Any]) -> None:
        """Replace the fields of ``checkpoint``'s ``state.json`` that ``state`` holds (its
        RNG state stays: the tensors beside it were saved with it), atomically."""
        from termwise.data.outputs import write_bytes_atomic

        path = checkpoint / "state.json"
        merged = {**orjson.loads(path.read_bytes()), **state}
        write_bytes_atomic(path, orjson.dumps(merged, option=orjson.OPT_INDENT_2))

    def _point_to(self, name: str) -> None:
        tmp = self.root / f".{LATEST}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(name)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / LATEST)

    def _prune(self, keep: Path) -> None:
        """Keep the ``keep`` newest checkpoints by step, never the one just written."""
        done = sorted((p for p in self.root.glob("step_*") if p.is_dir()), key=_step_of)
        for old in done[: -self.keep]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    def load(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        load_model_fn: ModelSaver = load_weights,
        say: Callable[[str], None] = print,
        load_state_fn: Callable[[Path], None] | None = None,
    ) -> tuple[Path, dict[str, Any]]:
        """Restore the newest intact checkpoint into the given objects; returns its path and
        its state.json. A checkpoint that cannot be read (a crash mid-copy, a bad disk) is
        skipped with a note, and the previous one is used."""
        pointer = self.root / LATEST
        named = self._pointer()
        if named is not None and self.latest() is None:
            say(f"note: {pointer} names {named!r}, which is missing; using the newest intact one")
        candidates = self.candidates()
        if not candidates:
            raise TermwiseUserError(
                "no checkpoint to resume from (no checkpoints/step_* folder)",
                path=self.root.parent,
            )
        for index, path in enumerate(candidates):
            try:
                if any(path.glob(ACCELERATE_RNG)):  # written by Accelerate's save_state
                    if load_state_fn is None:
                        raise ValueError("written by Accelerate's save_state; no loader given")
                    state = orjson.loads((path / "state.json").read_bytes())
                    load_state_fn(path)
                else:
                    state = _load_one(path, model, optimizer, scheduler, load_model_fn)
            except Exception as error:  # a corrupt checkpoint fails in many library ways
                reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                following = candidates[index + 1] if index + 1 < len(candidates) else None
                say(
                    f"note: checkpoint {path.name} is unreadable ({type(error).__name__}: "
                    f"{reason}); "
                    + (f"falling back to {following.name}" if following else "none left")
                )
                continue
            return path, state
        raise TermwiseUserError("no intact checkpoint to resume from", path=self.root)


def _name(step: int) -> str:
    return f"step_{step:08d}"


def _step_of(path: Path) -> int:
    digits = path.name.removeprefix("step_")
    return int(digits) if digits.isdigit() else -1


def _load_one(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    load_model_fn: ModelSaver,
) -> dict[str, Any]:
    # Read the small files first: a checkpoint missing them is skipped before any state moves.
    state: dict[str, Any] = orjson.loads((path / "state.json").read_bytes())
    rng = load_file(str(path / "rng.safetensors"))
    optimizer_state = torch.load(path / "optimizer.pt", weights_only=True)
    load_model_fn(model, path)
    optimizer.load_state_dict(optimizer_state)
    if scheduler is not None and (path / "scheduler.pt").exists():
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    set_rng_state(rng, state["rng"])
    return state
