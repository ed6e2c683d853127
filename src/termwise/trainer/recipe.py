"""The contract every recipe's ``recipe.py`` fulfils, and the one way a training run goes.

As torchtune's recipe interface, one signature per phase; here the phases are module-level
functions, so a recipe module itself satisfies :class:`Recipe` (``tests/test_layout.py``
checks every system's signatures against it):

* ``setup(config, output, console, resume)``: read and check every input, build the model
  and the trainer; returns the recipe's session.
* ``train(session, resume)``: fit (and whatever the model needs before it is saved).
* ``save(session, directory)``: the trained model, ready to load, in ``directory``.
* ``evaluate(session, directory)``: held-out results of the model saved in ``directory``.
* ``show(results, console)``: print them.
* ``key_metric(results)``: ``{"name": ..., "value": ...}`` of the number the run is judged
  by, or None (the trainer's held-out metrics then stand for it).

Beside them, ``OUTPUTS`` names (as regular expressions) the top-level entries the recipe
writes into a run directory beyond the trainer's own, so ``--overwrite`` removes them and
nothing else.

:func:`run_recipe` strings them together with one output layout for every system:
``OUTPUT/config.yaml`` (the resolved config), ``OUTPUT/model`` (the model),
``OUTPUT/eval.json`` (the results, with the recipe's name and key metric), beside the trainer's
checkpoints, scalars and health files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console

MODEL_DIR = "model"
EVAL_FILE = "eval.json"


class Recipe(Protocol):
    """A recipe module: see the module docstring for what each phase does."""

    NAME: str
    # True when training itself saves the best model so far into OUTPUT/model (early
    # stopping); then run_recipe saves the final weights only if no evaluation ran.
    KEEPS_BEST: bool
    OUTPUTS: tuple[str, ...]

    def setup(self, config: Any, output: Path, console: Console, resume: bool = False) -> Any: ...

    def train(self, session: Any, resume: bool = False) -> None: ...

    def save(self, session: Any, directory: Path) -> None: ...

    def evaluate(self, session: Any, directory: Path) -> dict[str, Any]: ...

    def show(self, results: dict[str, Any], console: Console) -> None: ...

    def key_metric(self, results: dict[str, Any]) -> dict[str, Any] | None: ...


def run_recipe(
    recipe: Recipe,
    config: Any,
    output: Path,
    console: Console,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Check and record the run directory, set up, train, save ``OUTPUT/model``, evaluate
    it into ``OUTPUT/eval.json`` and print the results; returns them."""
    from termwise.trainer.run_lock import run_lock

    with run_lock(output):  # one writer: a second train on a live run is refused
        return _run_locked(recipe, config, output, console, resume, overwrite)


def _run_locked(
    recipe: Recipe, config: Any, output: Path, console: Console, resume: bool, overwrite: bool
) -> dict[str, Any]:
    from termwise.data.jsonl import write_json
    from termwise.trainer.run_dir import start_run

    start_run(output, config, console, resume, overwrite, recipe.OUTPUTS)
    session = recipe.setup(config, output, console, resume)
    recipe.train(session, resume)
    model = output / MODEL_DIR
    if not (recipe.KEEPS_BEST and model.is_dir()):
        recipe.save(session, model)
    results = {"recipe": recipe.NAME, **recipe.evaluate(session, model)}
    results["key_metric"] = recipe.key_metric(results)
    write_json(output / EVAL_FILE, results)
    recipe.show(results, console)
    return results
