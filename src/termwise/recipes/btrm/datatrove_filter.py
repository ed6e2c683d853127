"""The membership heads as a datatrove pipeline step (``pip install 'termwise[datatrove]'``).

:class:`BtrmFilter` scores documents in batches with a saved btrm model, writes each head's
score into ``doc.metadata`` (``score_<head>``), and keeps or drops documents by thresholds
per head; dropped ones go to its ``exclusion_writer``. It runs wherever datatrove runs a
step (``LocalPipelineExecutor``, Slurm, its Ray executor) with their sharding and
``skip_completed`` resume. The model is loaded once per task on first use and never pickled
with the step.

>>> from datatrove.executor import LocalPipelineExecutor
>>> from datatrove.pipeline.readers import JsonlReader
>>> from datatrove.pipeline.writers import JsonlWriter
>>> LocalPipelineExecutor(pipeline=[
...     JsonlReader("corpus/"),
...     BtrmFilter("runs/btrm/train/model", keep={"news": 0.0},
...                exclusion_writer=JsonlWriter("dropped/")),
...     JsonlWriter("kept/"),
... ], tasks=8, logging_dir="logs/").run()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Literal

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from termwise.errors import TermwiseUserError

BELOW = "below_threshold"  # the reason a dropped document carries (metadata filter_reason)


class BtrmFilter(BaseFilter):
    """Scores every document with the heads of the btrm model in ``model_dir``.

    ``keep``: head -> threshold; a document is kept when its score reaches the threshold of
    any of them (``require="all"``: of every one). Without ``keep`` every document passes,
    annotated. ``batch_size`` documents are scored together (length-bucketed, LoRA merged);
    ``bf16``/``int8`` as ``termwise btrm score``'s flags.
    """

    name = "termwise btrm heads"

    def __init__(
        self,
        model_dir: str,
        keep: dict[str, float] | None = None,
        require: Literal["any", "all"] = "any",
        exclusion_writer: DiskWriter | None = None,
        batch_size: int = 64,
        bf16: bool = False,
        int8: bool = False,
    ) -> None:
        super().__init__(exclusion_writer, batch_size)
        if require not in ("any", "all"):
            raise ValueError(f"BtrmFilter: require must be 'any' or 'all', got {require!r}")
        self.model_dir, self.keep, self.require = str(model_dir), dict(keep or {}), require
        self.bf16, self.int8 = bf16, int8
        self._scorer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # A task loads its own model: the step travels to workers without it.
        return {**self.__dict__, "_scorer": None}

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            from termwise.recipes.btrm.score import load

            self._scorer = load(self.model_dir, bf16=self.bf16, int8=self.int8)
            unknown = sorted(set(self.keep) - set(self._scorer.heads))
            if unknown:
                raise TermwiseUserError(
                    f"keep names heads the model does not have: {', '.join(unknown)}; its "
                    f"heads: {', '.join(self._scorer.heads)}",
                    path=self.model_dir,
                )
        return self._scorer

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        scorer = self.scorer
        scores = scorer.score_tensor([doc.text for doc in batch]).tolist()
        results: list[bool | tuple[bool, str]] = []
        for doc, row in zip(batch, scores, strict=True):
            by_head = dict(zip(scorer.heads, row, strict=True))
            doc.metadata.update({f"score_{head}": value for head, value in by_head.items()})
            results.append(True if self.passes(by_head) else (False, BELOW))
        return results

    def passes(self, scores: dict[str, float]) -> bool:
        """Whether a document with these scores is kept."""
        if not self.keep:
            return True
        reached = [scores[head] >= threshold for head, threshold in self.keep.items()]
        return all(reached) if self.require == "all" else any(reached)
