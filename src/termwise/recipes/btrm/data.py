"""Data for the multi-head reward model: who is a positive or a negative of which head.

Every row read becomes one example with a label per head: positive, negative of a tier
(soft, semi-firm, furthest; the tier sets its pair weight) or unrelated. A row can be a
positive of one head and a negative of every other (cross-corpus negatives), so one batch
trains many heads. Each source keeps a seeded held-out share for the final evaluation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from termwise.recipes.btrm.config import BtrmConfig, HeldoutFold, SourceConfig
from termwise.recipes.btrm.sources import Record, SourceReport, read_source

TIER_CODES = {"soft_neg": 1, "semi_firm_neg": 2, "furthest_neg": 3}
TIER_NAMES = {code: name for name, code in TIER_CODES.items()}


@dataclass
class MembershipTable:
    """``positive[i, h]``: example i is in head h. ``negative_tier[i, h]``: 0 when it is not
    a negative of h, else a :data:`TIER_CODES` value. ``source[i]``: its source key."""

    heads: list[str]
    texts: list[str]
    source: np.ndarray
    tier: list[str | None]
    heldout: np.ndarray
    positive: np.ndarray
    negative_tier: np.ndarray
    reports: dict[str, SourceReport] = field(default_factory=dict)
    group: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    """The document each row was cut from (``source|group``); empty: every row its own."""

    def __post_init__(self) -> None:
        if not len(self.group):
            self.group = np.array([f"row{i}" for i in range(len(self.texts))])

    def negative_weight(self, weights: dict[str, float]) -> np.ndarray:
        table = np.zeros(len(TIER_CODES) + 1, dtype=np.float32)
        for name, code in TIER_CODES.items():
            table[code] = weights[name]
        return table[self.negative_tier]

    def split(self, heldout: bool) -> np.ndarray:
        return np.flatnonzero(self.heldout == heldout)


def _unit_hash(name: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}|{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_heldout(
    row_id: str, source_key: str, fraction: float, fold: HeldoutFold | None = None
) -> bool:
    """Stable per-row assignment (a hash, not the RNG): the same row is held out in every
    run and every process, whatever else changes in the config. With a ``fold``: the row
    whose hash falls in that fold's 1/K of [0, 1)."""
    position = _unit_hash(row_id, source_key)
    if fold is not None:
        return int(position * fold.folds) == fold.index
    return position < fraction


def heldout_groups(
    groups: list[str], salt: str, fraction: float, fold: HeldoutFold | None = None
) -> set[str]:
    """Whole documents to hold out: the ``round(fraction * n)`` groups first in hash order,
    at least one and never all when there are two or more (a threshold on the hash, as for
    rows, would often hold out none of five science-fiction texts). With a ``fold``: the
    groups dealt to it when the hash order is dealt round the K folds (one source's
    documents spread evenly over the folds)."""
    unique = sorted(set(groups), key=lambda g: _unit_hash(g, salt))
    if len(unique) < 2:
        return set()
    if fold is not None:
        return set(unique[fold.index :: fold.folds])
    count = min(max(round(fraction * len(unique)), 1), len(unique) - 1)
    return set(unique[:count])


def level_rows(table: MembershipTable, rows: np.ndarray, fraction: float) -> np.ndarray:
    """The rows of whole documents among ``rows`` kept out of training to set the score
    level (``level_fraction`` of the documents, in hash order: the same for every seed).
    One order over every document, not per file with a floor: docs/btrm.md measures both."""
    if fraction <= 0:
        return rows[:0]
    groups = [str(g) for g in table.group[rows]]
    held = heldout_groups(groups, "score-level", fraction)
    return rows[[g in held for g in groups]]


def unseen_documents(table: MembershipTable, kept_out: np.ndarray) -> np.ndarray:
    """Per head, the documents among its positives in the rows kept out of training."""
    groups = table.group[kept_out]
    return np.array(
        [len(np.unique(groups[table.positive[kept_out, h]])) for h in range(len(table.heads))]
    )


def kept_out_for_levelled_heads(
    table: MembershipTable, kept_out: np.ndarray, minimum: int
) -> np.ndarray:
    """The rows of ``kept_out`` to keep out when a head with fewer than ``minimum`` of its
    positive documents among them keeps its raw scores (``train_on_unlevelled``): all but
    the rows of documents that are a positive of such a head and of no levelled one. A
    document that is no head's positive stays: it is a negative for the levelled heads'
    level."""
    unlevelled = unseen_documents(table, kept_out) < minimum
    positive, groups = table.positive[kept_out], table.group[kept_out]
    of_unlevelled = set(groups[(positive & unlevelled).any(axis=1)].tolist())
    of_levelled = set(groups[(positive & ~unlevelled).any(axis=1)].tolist())
    returned = of_unlevelled - of_levelled
    return kept_out[[g not in returned for g in groups]]


def level_sample(
    table: MembershipTable, rows: np.ndarray, per_head: int = 200, others: int = 1000
) -> np.ndarray:
    """Training rows to set the score level with: up to ``per_head`` positives of every head
    and ``others`` rows of any kind, drawn in one fixed order (the same for every seed),
    sorted. A few thousand rows of many documents set a median as well as all of them do,
    at a fraction of the scoring time."""
    order = np.random.default_rng(0).permutation(rows)
    chosen = set(order[:others].tolist())
    for h in range(len(table.heads)):
        chosen.update(order[table.positive[order, h]][:per_head].tolist())
    return np.array(sorted(chosen), dtype=np.int64)


def heldout_flags(
    records: list[Record], source: SourceConfig, fraction: float, fold: HeldoutFold | None = None
) -> list[bool]:
    """Which of a source's rows are held out. By document: salted with the file alone, so
    tier-filtered views of one file (its dialogue windows, their single lines) hold out the
    same documents. By row: a derived line follows its dialogue window."""
    if source.group_field:
        held = heldout_groups([r.group for r in records], str(source.path), fraction, fold)
        return [r.group in held for r in records]
    return [is_heldout(r.group, source.key, fraction, fold) for r in records]


def heldout_summary(
    records: list[Record], source: SourceConfig, fraction: float, fold: HeldoutFold | None = None
) -> str:
    """How a source is split, for people: "by row" or "k of n documents (by FIELD)"."""
    if not source.group_field:
        return "by row"
    flags = heldout_flags(records, source, fraction, fold)
    held = {r.group for r, flag in zip(records, flags, strict=True) if flag}
    return f"{len(held)} of {len({r.group for r in records})} documents (by {source.group_field})"


def head_sources(config: BtrmConfig) -> list[tuple[list[SourceConfig], list[SourceConfig]]]:
    """Per head: positive sources, and negative sources with their tiers after merging
    shared negatives and (optionally) the other heads' positives; a source that is a
    positive of a head is never also its negative."""
    resolved = []
    for head in config.heads:
        positive_keys = {s.key for s in head.positive_sources}
        negatives = [*head.negative_sources, *config.shared_negatives]
        if config.cross_corpus_negatives is not None:
            for other in config.heads:
                if other.name != head.name:
                    negatives += [
                        s.model_copy(update={"neg_tier": config.cross_corpus_negatives})
                        for s in other.positive_sources
                    ]
        merged: dict[str, SourceConfig] = {}
        for source in negatives:
            if source.key not in positive_keys:
                merged.setdefault(source.key, source)  # the first mention sets the tier
        resolved.append((head.positive_sources, list(merged.values())))
    return resolved


def build_table(config: BtrmConfig) -> MembershipTable:
    """Read every source once and label every row for every head."""
    plan = head_sources(config)
    sources: dict[str, SourceConfig] = {}
    for positives, negatives in plan:
        for source in [*positives, *negatives]:
            sources.setdefault(source.key, source)
    rows: dict[str, list[Record]] = {}
    reports: dict[str, SourceReport] = {}
    for key, source in sources.items():
        rows[key], reports[key] = read_source(
            source.path,
            source.text_field,
            source.tiers,
            config.on_bad_record,
            config.max_rows_per_source,
            source.group_field,
        )
    offsets: dict[str, int] = {}
    texts: list[str] = []
    source_of: list[str] = []
    tiers: list[str | None] = []
    heldout: list[bool] = []
    groups: list[str] = []
    for key, records in rows.items():
        offsets[key] = len(texts)
        groups += [f"{key}|{record.group}" for record in records]
        texts += [record.text for record in records]
        source_of += [key] * len(records)
        tiers += [record.tier for record in records]
        heldout += heldout_flags(
            records, sources[key], config.heldout_fraction, config.heldout_fold
        )
    positive = np.zeros((len(texts), len(config.heads)), dtype=bool)
    negative_tier = np.zeros((len(texts), len(config.heads)), dtype=np.int8)
    for h, (positives, negatives) in enumerate(plan):
        for source in negatives:
            start = offsets[source.key]
            assert source.neg_tier is not None  # validated in the config
            negative_tier[start : start + len(rows[source.key]), h] = TIER_CODES[source.neg_tier]
        for source in positives:
            start = offsets[source.key]
            positive[start : start + len(rows[source.key]), h] = True
            negative_tier[start : start + len(rows[source.key]), h] = 0
    return MembershipTable(
        [h.name for h in config.heads],
        texts,
        np.array(source_of),
        tiers,
        np.array(heldout),
        positive,
        negative_tier,
        reports,
        np.array(groups),
    )


def source_balanced(table: MembershipTable, pool: np.ndarray, balance: bool) -> np.ndarray | None:
    """Draw probabilities over ``pool`` that give every source the same share (None:
    uniform over rows, when ``balance`` is off)."""
    if not balance:
        return None
    keys, inverse, counts = np.unique(table.source[pool], return_inverse=True, return_counts=True)
    probability = 1.0 / (len(keys) * counts[inverse])
    return probability / probability.sum()


def plan_batches(
    table: MembershipTable,
    rows: np.ndarray,
    lengths: np.ndarray,
    batch_size: int,
    batches: int,
    seed: int,
    bucket: int = 32,
    balance_sources: bool = True,
) -> list[np.ndarray]:
    """Batches that keep most heads active and padding low.

    Half of each batch is positives, the same number for every head (the remainder from any
    head), the other half negatives. With ``balance_sources`` every source of a head's
    positives, and every negative source, is drawn equally often, so a small source (73
    science-fiction passages among 1100 fiction rows) is not drowned by large ones.
    ``bucket`` batches are drawn at a time and every column of picks is sorted by length
    before being dealt out, so a batch holds texts of similar length without losing its mix.
    """
    rng = np.random.default_rng(seed)
    positive_pools = [rows[table.positive[rows, h]] for h in range(len(table.heads))]
    positive_pools = [pool for pool in positive_pools if len(pool)]
    pool_probability = [source_balanced(table, pool, balance_sources) for pool in positive_pools]
    negatives = rows[(table.negative_tier[rows] > 0).any(axis=1) & ~table.positive[rows].any(1)]
    if not len(negatives):
        negatives = rows
    neg_probability = source_balanced(table, negatives, balance_sources)
    half = max(1, batch_size // 2)
    per_head, extra = divmod(half, len(positive_pools))
    all_positives = np.concatenate(positive_pools)
    planned: list[np.ndarray] = []
    while len(planned) < batches:
        count = min(bucket, batches - len(planned))
        # Columns of [count, ...] picks, each sorted by length down the batches: batch i
        # takes the i-th shortest pick of every column, so lengths match within a batch
        # while each batch keeps per_head positives of every head and its negative half.
        columns = [
            rng.choice(pool, size=count, p=probability)
            for pool, probability in zip(positive_pools, pool_probability, strict=True)
            for _ in range(per_head)
        ]
        columns += [rng.choice(all_positives, size=count) for _ in range(extra)]
        negative_block = rng.choice(
            negatives, size=(count, batch_size - half), p=neg_probability
        ).reshape(-1)
        columns_sorted = [c[np.argsort(lengths[c], kind="stable")] for c in columns]
        negative_block = negative_block[np.argsort(lengths[negative_block], kind="stable")]
        step = batch_size - half
        block = [
            np.concatenate(
                [
                    np.array([c[i] for c in columns_sorted], dtype=np.int64),
                    negative_block[i * step : (i + 1) * step],
                ]
            )
            for i in range(count)
        ]
        planned.extend(block[i] for i in rng.permutation(count))
    return planned[:batches]
