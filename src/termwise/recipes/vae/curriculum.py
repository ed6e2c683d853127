"""vae's curriculum: its stages laid out in steps, the KL and teacher weights they ramp, and
the callback that freezes what each stage freezes when training enters it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from termwise.recipes.vae.config import StageConfig, VaeConfig
from termwise.recipes.vae.model import SentenceVAE
from termwise.schedules import Schedule, cyclical, join, linear_warmup, piecewise
from termwise.trainer import Trainer, TrainerCallback


@dataclass
class Curriculum:
    """The stages laid out in steps."""

    stages: list[StageConfig]
    starts: list[int]  # first step of each stage
    total: int
    kl_weight: Schedule
    teacher_weight: Schedule

    def stage_at(self, step: int) -> int:
        return max(i for i, start in enumerate(self.starts) if step >= start)


def plan_curriculum(stages: list[StageConfig], steps_per_epoch: int) -> Curriculum:
    lengths = [stage.epochs * steps_per_epoch for stage in stages]
    starts = [sum(lengths[:i]) for i in range(len(stages))]
    ramps: list[Schedule] = []
    for stage, length in zip(stages, lengths, strict=True):
        ramp = stage.kl_weight
        if ramp.shape == "cyclical":
            ramps.append(cyclical(length, ramp.cycles, 0.5, ramp.start, ramp.end))
        else:
            ramps.append(linear_warmup(ramp.start, ramp.end, length))
    return Curriculum(
        stages,
        starts,
        sum(lengths),
        join(ramps, starts[1:]),
        piecewise(starts[1:], [s.teacher_weight for s in stages]),
    )


def apply_freezing(model: SentenceVAE, stage: StageConfig) -> None:
    """Only the parts the stage does not freeze train."""
    for part, modules in model.parts().items():
        for module in modules:
            for parameter in module.parameters():
                parameter.requires_grad_(part not in stage.freeze)


@dataclass
class StageSwitch(TrainerCallback):
    """Freezes what a curriculum stage freezes when training enters it. The stage follows
    from the step, so a resumed run re-enters its stage at its first step: nothing to save."""

    curriculum: Curriculum
    console: Console
    stage: int = -1

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        stage = self.curriculum.stage_at(step)
        if stage != self.stage:
            self.stage = stage
            model = trainer.unwrapped_model
            assert isinstance(model, SentenceVAE)
            apply_freezing(model, self.curriculum.stages[stage])
            self.console.print(f"stage {self.curriculum.stages[stage].name!r} from step {step}")


def stage_config_keys(config: VaeConfig, stage: int) -> dict[str, str | list[str]]:
    """Which config fields set the values health findings suggest, in one stage: the
    stage's own teacher weight, its KL weight when the stage holds it flat (a ramp has no
    single value to fix), free bits unless ``auto`` chooses them."""
    keys: dict[str, str | list[str]] = {"teacher.weight": f"stages.{stage}.teacher_weight"}
    ramp = config.stages[stage].kl_weight
    if ramp.start == ramp.end:
        keys["kl.weight"] = [f"stages.{stage}.kl_weight.start", f"stages.{stage}.kl_weight.end"]
    if config.kl.free_bits != "auto":
        keys["kl.free_bits"] = "kl.free_bits"
    return keys
