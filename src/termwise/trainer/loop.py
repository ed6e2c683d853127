"""The training loop shared by every recipe, built on Hugging Face Accelerate."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import orjson
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, send_to_device
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from termwise.errors import TermwiseUserError, TrainingDiverged
from termwise.health import HealthMonitor
from termwise.health.findings import Finding
from termwise.health.monitor import ConfigKeysSpec
from termwise.health.report import print_summary, write_report
from termwise.meter import DeviceMeter
from termwise.objective import Breakdown, stack_scalars
from termwise.terms.stats import PROGRESS
from termwise.trainer.callbacks import TrainerCallback, TrainerControl
from termwise.trainer.checkpoint import CheckpointManager, ModelSaver, load_weights, save_weights
from termwise.trainer.config import TrainerConfig
from termwise.trainer.sampler import EpochSampler
from termwise.trainer.scalars import ScalarWriter, log_sizes, truncate_logs


def _cache_lomo_probe() -> None:
    """accelerate 1.15 asks importlib whether the optional ``lomo_optim`` package exists on
    every ``optimizer.step()`` and ``backward()`` (about 0.27 ms a step, a third of a tiny
    model's step here). Whether a package is installed cannot change during a run, so the
    answer is computed once."""
    import accelerate
    import accelerate.accelerator
    import accelerate.optimizer

    modules = (accelerate.optimizer, accelerate.accelerator)
    if not accelerate.__version__.startswith("1.15.") or not all(
        hasattr(m, "is_lomo_available") for m in modules
    ):
        return  # another accelerate: its internals may differ, leave them as they are
    probe = functools.cache(accelerate.optimizer.is_lomo_available)
    for module in modules:
        module.is_lomo_available = probe


_cache_lomo_probe()

TRACKER_RUN = "tb"  # trackers log under run_dir/tb (TensorBoard's event files, as before)


class StepOutput(NamedTuple):
    """What a recipe's loss function returns for one batch."""

    loss: Tensor
    breakdown: Breakdown
    stats: Mapping[str, Tensor] | None = None


LossFn = Callable[[nn.Module, Any, int], StepOutput]


class Stateful(Protocol):
    """An object whose JSON-serialisable state is saved in every checkpoint."""

    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


EvalFn = Callable[[nn.Module, int], Mapping[str, float]]  # (model, step) -> metrics


def _mean_output(outs: list[StepOutput]) -> StepOutput:
    """One step's output from its micro-batches': the mean of the loss and of every term
    and stat, as the Transformers callback logs an accumulated step."""

    def mean(tensors: list[Tensor]) -> Tensor:
        # nanmean: a stat is NaN on a micro-batch where its term was inactive
        return torch.stack([t.detach().float() for t in tensors]).nanmean(0)

    def mean_stats(found: list[Mapping[str, Tensor]]) -> dict[str, Tensor]:
        # A stat missing from a micro-batch (its term was None there) is averaged without it.
        keys = dict.fromkeys(k for stats in found for k in stats)
        return {k: mean([stats[k] for stats in found if k in stats]) for k in keys}

    parts = [o.breakdown for o in outs]
    breakdown = dataclasses.replace(
        parts[0],
        raw=mean([b.raw for b in parts]),
        weight=mean([b.weight for b in parts]),
        weighted=mean([b.weighted for b in parts]),
        share=mean([b.share for b in parts]),
        active=mean([b.active for b in parts]),
        total=mean([b.total for b in parts]),
        at_bound=mean([b.at_bound for b in parts]),
        stats=mean_stats([b.stats for b in parts]),
    )
    stats = mean_stats([o.stats or {} for o in outs])
    return StepOutput(mean([o.loss for o in outs]), breakdown, stats or None)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Call before building the model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainState:
    """Where a run is: saved in every checkpoint, restored on resume."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    nonfinite_steps: int = 0
    consecutive_nonfinite: int = 0
    stopped_early: bool = False
    final_step: int = -1  # the step whose final evaluation is logged (-1: none yet)
    evaluated_step: int = -1  # the step of the newest evaluation logged (-1: none yet)


@dataclass
class TrainResult:
    state: TrainState
    metrics: dict[str, float]
    findings: list[Finding]
    last_checkpoint: Path | None
    scalars: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Trains ``model`` on ``train_data`` with ``loss_fn``; logs every term, watches health.

    ``loss_fn(model, batch, step)`` returns a :class:`StepOutput` (the loss, the objective's
    breakdown and optional extra stats) and changes nothing else. ``eval_fn(model, step)``
    returns metrics such as ``train_loss``/``val_loss`` for the fit rules.
    ``callbacks`` carry the recipe's phases (:mod:`termwise.trainer.callbacks`).
    The health monitor is built from ``config.health_every`` with ``config_keys`` (see
    :class:`~termwise.health.HealthMonitor`); ``health=False`` runs without one, ``monitor``
    passes one built with other rules. ``save_model``/``load_model`` let a recipe save
    adapters instead of full weights. ``stateful``: recipe objects whose JSON state is in
    every checkpoint (an adaptive threshold).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_data: Dataset[Any],
        loss_fn: LossFn,
        config: TrainerConfig,
        run_dir: str | Path,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        lr_scheduler: Any = None,
        eval_fn: EvalFn | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        health: bool = True,
        config_keys: ConfigKeysSpec | None = None,
        monitor: HealthMonitor | None = None,
        console: Console | None = None,
        save_model: ModelSaver = save_weights,
        load_model: ModelSaver = load_weights,
        accelerator: Accelerator | None = None,
        stateful: Mapping[str, Stateful] | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.console = console or Console()
        self.accelerator = accelerator or Accelerator(
            mixed_precision=config.mixed_precision,
            log_with=config.trackers() or None,
            project_dir=str(self.run_dir),
        )
        # Accelerate divides each micro-batch's loss by this and syncs gradients on the last.
        self.accelerator.gradient_accumulation_steps = config.gradient_accumulation_steps
        main = self.accelerator.is_main_process
        if monitor is None and health:  # only the main process writes the health files
            monitor = HealthMonitor(
                every=config.health_every,
                run_dir=self.run_dir if main else None,
                console=self.console if main else None,
                config_keys=config_keys,
            )
        self.monitor = monitor
        self.loss_fn = loss_fn
        self.eval_fn = eval_fn
        self.callbacks = list(callbacks)
        self.control = TrainerControl()
        self.save_model_fn = save_model
        self.load_model_fn = load_model
        # Recipe state that must survive a resume (an adaptive threshold, a best metric).
        self.stateful: dict[str, Stateful] = dict(stateful or {})
        for callback in self.callbacks:
            if callback.state_key is not None:
                self.stateful[callback.state_key] = callback  # type: ignore[assignment]
        size = len(train_data)  # type: ignore[arg-type]
        if size == 0:
            raise ValueError("Trainer: train_data is empty")
        # The loader is not passed to accelerator.prepare: the sampler shards by rank itself,
        # so its position can be saved and restored exactly (prepare would copy it).
        self.sampler = EpochSampler(
            size,
            config.seed,
            rank=self.accelerator.process_index,
            world_size=self.accelerator.num_processes,
        )
        self.loader = DataLoader(
            train_data,
            batch_size=config.batch_size,
            sampler=self.sampler,
            collate_fn=collate_fn,
            num_workers=config.num_workers,
            # Its own generator: each new iterator draws a base seed, and drawing it from the
            # global RNG would shift dropout noise after a resume.
            generator=torch.Generator().manual_seed(config.seed),
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.lr_scheduler = (
            self.accelerator.prepare(lr_scheduler) if lr_scheduler is not None else None
        )
        self.checkpoints = CheckpointManager(self.run_dir, config.keep_checkpoints)
        self.state = TrainState()
        self.meter = DeviceMeter()
        self.metrics: dict[str, float] = {}
        self.last_scalars: dict[str, float] = {}
        self._saved_step = -1
        self._newest: Finding | None = None
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if monitor is not None and main:
            monitor.listeners.append(self._on_finding)

    @property
    def unwrapped_model(self) -> nn.Module:
        """The model without Accelerate's wrappers (DDP, mixed precision)."""
        return self.accelerator.unwrap_model(self.model)

    def fire(self, event: str, *args: Any) -> None:
        """Call ``event`` (one of :data:`~termwise.trainer.callbacks.EVENTS`) on every
        callback, in the order they were registered."""
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # -- the loop ---------------------------------------------------------------------

    def fit(self, resume: bool = False) -> TrainResult:
        if resume:
            self._resume()
        else:
            if self.checkpoints.candidates():
                raise TermwiseUserError(
                    "already holds a run; pass --resume to continue it or --overwrite to "
                    "replace it",
                    path=self.run_dir,
                )
            seed_everything(self.config.seed)
        self.fire("on_train_begin")
        main = self.accelerator.is_main_process
        writer = ScalarWriter(self.run_dir, self._start_trackers()) if main else None
        try:
            with self._progress() as progress:
                task = progress.add_task(
                    "train", total=self.config.max_steps, completed=self.state.step, status=""
                )
                self._run(writer, progress, task)
            if self.state.final_step != self.state.step:  # once: a finished run resumed adds none
                if self.monitor is not None:
                    self.monitor.flush()
                # Stopped early, or resumed at or past a shorter max_steps: the evaluation
                # of this step is already logged, and stands as the final one.
                if self.state.evaluated_step != self.state.step:
                    self._evaluate(writer)
                self.state.final_step = self.state.step
            if self.state.step > self._saved_step:
                last = self._save()
            else:  # every process decides alike: only the main one is given a path
                last = None
                self._record_final()
        except TrainingDiverged:
            raise  # the current weights are not good: the last good checkpoint stays as it is
        except BaseException:
            # Interrupted (Ctrl-C, an error in recipe code): save the last completed step so
            # the run can resume, unless it is already on disk.
            if self._saved_step < self.state.step > 0 and self.state.consecutive_nonfinite == 0:
                self._save()
            if self._saved_step > 0:
                self.console.print(
                    f"stopped at step {self.state.step}; checkpoint of step {self._saved_step} "
                    f"in {self.checkpoints.root}: continue with --resume",
                    markup=False,
                )
            raise
        finally:
            if writer is not None:
                writer.close()
            self._stop_trackers()
        result = self._finish(last or self.checkpoints.latest())
        self.fire("on_train_end")
        return result

    def _start_trackers(self) -> Any:
        """Accelerate's trackers (``log_with``) under ``run_dir/tb``; their ``log``, or None
        without any. A resumed run hides the events logged after its checkpoint."""
        if not self.accelerator.log_with:
            return None
        purge = {"tensorboard": {"purge_step": self.state.step + 1}} if self.state.step else {}
        self.accelerator.init_trackers(TRACKER_RUN, init_kwargs=purge)
        return self.accelerator.log

    def _stop_trackers(self) -> None:
        # Not accelerator.end_training(): that also ends the process group, which the
        # recipe's evaluation after fit() may still use.
        for tracker in self.accelerator.trackers:
            tracker.finish()
        self.accelerator.trackers.clear()

    def _run(self, writer: ScalarWriter | None, progress: Progress, task: Any) -> None:
        cfg = self.config
        batches = self._micro_batches()
        while self.state.step < cfg.max_steps and not self.state.stopped_early:
            group = [next(batches) for _ in range(cfg.gradient_accumulation_steps)]
            self.train_step(*(batch for batch, _ in group))
            # Where the data stands once the step is done (a checkpoint resumes from here).
            self.state.epoch, self.state.batches_in_epoch = group[-1][1]
            step = self.state.step
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                self._log(writer, progress, task)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.max_steps:
                self._evaluate(writer)
                if self.control.should_stop:
                    self.state.stopped_early = True
                    progress.update(task, completed=step)
                    return
            healthy = self.state.consecutive_nonfinite == 0  # never save mid-divergence
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and healthy:
                self._save()
            progress.update(task, completed=step)

    def _micro_batches(self) -> Iterator[tuple[Any, tuple[int, int]]]:
        """Batches on the device, epoch after epoch from where the state says the data
        stands, each with ``(epoch, batches of that epoch consumed with it)``."""
        epoch, position = self.state.epoch, self.state.batches_in_epoch
        while True:
            consumed = position * self.config.batch_size * self.accelerator.num_processes
            self.sampler.set_epoch(epoch, consumed)
            for batch in self.loader:
                position += 1
                yield send_to_device(batch, self.accelerator.device), (epoch, position)
            epoch, position = epoch + 1, 0

    def train_step(self, batch: Any, *more: Any) -> None:
        """One optimizer step on ``batch`` (already on the device) and, with gradient
        accumulation, the further micro-batches ``more``: the non-finite guard, scalar
        accumulation and health observation, on the mean over the micro-batches. :meth:`fit`
        calls it per optimizer step; it is public for custom loops and benchmarks."""
        step = self.state.step
        self.fire("on_step_begin", step)
        self.model.train()
        outs = [self._backward(micro, step, len(more) > 0) for micro in (batch, *more)]
        out = outs[0] if not more else _mean_output(outs)
        clip = self.config.grad_clip if self.config.grad_clip is not None else float("inf")
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), clip)
        # The one host sync per step: whether to apply this update must be known now.
        finite = bool(torch.isfinite(out.loss.detach()) & torch.isfinite(grad_norm))
        self.state.step += 1
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            self.state.nonfinite_steps += 1
            self.state.consecutive_nonfinite += 1
            if self.monitor is not None:
                self.monitor.record_nonfinite(step)
            if self.state.consecutive_nonfinite >= self.config.max_consecutive_nonfinite:
                last = self.checkpoints.latest()
                raise TrainingDiverged(
                    f"stopped at step {step}: {self.state.consecutive_nonfinite} consecutive "
                    "steps with a non-finite loss or gradient; last good checkpoint: "
                    f"{last if last is not None else 'none yet'}"
                )
            self.fire("on_step_end", step)
            return
        self.optimizer.step()
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.consecutive_nonfinite = 0
        stats = {**(out.stats or {}), "grad_norm": grad_norm.detach().float()}
        term_keys, term_values = out.breakdown.flat()
        keys = term_keys + list(stats)
        values = torch.cat([term_values, stack_scalars(list(stats.values()))])
        self.meter.add(keys, values)
        if self.monitor is not None:
            self.monitor.observe_flat(step, keys, values, out.breakdown.names, out.breakdown.roles)
        self.fire("on_step_end", step)

    def _backward(self, batch: Any, step: int, accumulating: bool) -> StepOutput:
        """The loss of one micro-batch and its backward pass (Accelerate scales it by the
        accumulation steps and syncs gradients across processes on the last one)."""
        with self.accelerator.accumulate(self.model) if accumulating else nullcontext():
            with self.accelerator.autocast():
                out = self.loss_fn(self.model, batch, step)
            self.accelerator.backward(out.loss)
        return out

    # -- periodic work ----------------------------------------------------------------

    def _log(self, writer: ScalarWriter | None, progress: Progress, task: Any) -> None:
        scalars = self.meter.pop()
        if not scalars:
            return
        scalars["lr"] = float(self.optimizer.param_groups[0]["lr"])
        scalars["nonfinite_steps"] = float(self.state.nonfinite_steps)
        self.last_scalars = scalars
        if writer is not None:
            writer.write(self.state.step, scalars)
        shares = " ".join(
            f"{k.removesuffix('.share')} {100 * v:.0f}%"
            for k, v in scalars.items()
            if k.endswith(".share")
        )
        status = f"loss {scalars.get('total', float('nan')):.4g} | {shares}"
        for key, value in scalars.items():  # the stats a term marks for the progress bar
            label, scale = PROGRESS.get(key.rpartition(".")[2], ("", 0.0))
            if label:
                status += f" | {key.rpartition('.')[0]} {label} {scale * value:.3g}"
        if self._newest is not None:
            status += f" | {self._newest.code}"
        progress.update(task, status=status)

    def _evaluate(self, writer: ScalarWriter | None) -> None:
        if self.eval_fn is None:
            return
        self.model.eval()
        with torch.no_grad():
            metrics = dict(self.eval_fn(self.unwrapped_model, self.state.step))
        self.metrics = metrics
        self.state.evaluated_step = self.state.step
        self.fire("on_evaluate", self.state.step, metrics)
        if writer is not None:
            writer.write(self.state.step, metrics, prefix="eval/")
            with (self.run_dir / "metrics.jsonl").open("ab") as handle:
                handle.write(orjson.dumps({"step": self.state.step, **metrics}) + b"\n")
        if self.monitor is not None:
            self.monitor.report_metrics(self.state.step, metrics)

    def _checkpoint_state(self) -> dict[str, Any]:
        """What ``state.json`` holds beside the tensors: where the run is, its monitor and
        recipe state, its last metrics, and how long each log was (resume cuts them back)."""
        return {
            "train": asdict(self.state),
            "seed": self.config.seed,
            "monitor": self.monitor.state_dict() if self.monitor is not None else None,
            "extra": {name: obj.state_dict() for name, obj in self.stateful.items()},
            "metrics": self.metrics,
            "last_scalars": self.last_scalars,
            "logs": log_sizes(self.run_dir),
        }

    def _record_final(self) -> None:
        """The final evaluation came after the last checkpoint, at its step: record it in
        that checkpoint, so a resume neither loses it nor logs it twice."""
        latest = self.checkpoints.latest()
        if self.accelerator.is_main_process and latest is not None:
            if latest.name == f"step_{self.state.step:08d}":
                self.checkpoints.update_state(latest, self._checkpoint_state())
        self.accelerator.wait_for_everyone()

    def _save(self) -> Path | None:
        self.accelerator.wait_for_everyone()
        main = self.accelerator.is_main_process
        state = self._checkpoint_state()
        path = None
        if self._accelerate_state():
            # Every process takes part: sharded optimizer state is gathered by Accelerate.
            tmp = self.checkpoints.root / f".tmp-step_{self.state.step:08d}"
            if main:
                tmp = self.checkpoints.begin(self.state.step)
            self.accelerator.wait_for_everyone()
            self.accelerator.save_state(str(tmp), safe_serialization=True)
            self.accelerator.wait_for_everyone()
            if main:
                path = self.checkpoints.commit(self.state.step, state)
        elif main:
            path = self.checkpoints.save(
                self.state.step,
                self.unwrapped_model,
                self.optimizer,
                self.lr_scheduler,
                state,
                self.save_model_fn,
            )
        self._saved_step = self.state.step
        self.accelerator.wait_for_everyone()
        self.fire("on_save", path)
        return path

    def _accelerate_state(self) -> bool:
        """Whether checkpoints go through Accelerate's state API (see TrainerConfig)."""
        chosen = self.config.checkpoint_format
        if chosen == "auto":
            sharded = {DistributedType.FSDP, DistributedType.DEEPSPEED}
            return self.accelerator.distributed_type in sharded
        return chosen == "accelerate"

    def _resume(self) -> None:
        path, state = self.checkpoints.load(
            self.unwrapped_model,
            self.optimizer,
            self.lr_scheduler,
            self.load_model_fn,
            say=lambda text: self.console.print(text, markup=False),
            load_state_fn=lambda path: self.accelerator.load_state(str(path)),
        )
        self.state = TrainState(**state["train"])
        self.state.consecutive_nonfinite = 0
        self.metrics = dict(state.get("metrics") or {})
        self.last_scalars = dict(state.get("last_scalars") or {})
        if self.monitor is not None and state.get("monitor"):
            self.monitor.load_state_dict(state["monitor"])
        for name, saved in state.get("extra", {}).items():
            if name in self.stateful:
                self.stateful[name].load_state_dict(saved)
        self._saved_step = self.state.step
        if self.accelerator.is_main_process:
            # Steps after the checkpoint were logged by the interrupted run and will be
            # logged again: drop them, so every step appears once.
            truncate_logs(self.run_dir, self.state.step, state.get("logs"))
        self.console.print(f"resumed from step {self.state.step} ({path})")

    def _finish(self, last: Path | None) -> TrainResult:
        findings = list(self.monitor.findings) if self.monitor is not None else []
        if self.accelerator.is_main_process:
            write_report(
                self.run_dir,
                self.state.step,
                self.last_scalars,
                findings,
                nonfinite_steps=self.state.nonfinite_steps,
                metrics=self.metrics,
            )
            if self.monitor is not None:
                print_summary(findings, self.console)
        return TrainResult(self.state, self.metrics, findings, last, self.last_scalars)

    def _on_finding(self, finding: Finding) -> None:
        if finding.severity != "info":
            self._newest = finding

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            disable=not (self.config.progress and self.accelerator.is_main_process),
        )
