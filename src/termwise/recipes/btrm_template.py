"""The default ``termwise btrm`` config, written by ``termwise btrm gen-config``."""

from __future__ import annotations

from pathlib import Path

from termwise.errors import TermwiseUserError

FICTION = [
    "brown_adventure",
    "brown_mystery",
    "brown_romance",
    "brown_science_fiction",
    "brown_humor",
]
DIALOGUE = ["dialogue_chat", "dialogue_scripts", "dialogue_shakespeare"]
PROSE = [*FICTION, "brown_news", "brown_learned", "brown_government"]
REQUIRED = [
    *PROSE,
    *DIALOGUE,
    "glossary_foldoc",
    "reviews",
    "reasoning_gsm8k",
    "reasoning_bbh",
    "encyclopedic_wikitext",
    "web_c4",
]


# Corpora cut into chunks whose `source` names the document (a Brown text, a review, a chat
# session): their held-out split takes whole documents. The others are one document each
# (wikitext, Shakespeare), two (the scripts) or already independent rows.
BY_DOCUMENT = {*PROSE, "reviews", "dialogue_chat"}


def _sources(directory: Path, names: list[str], indent: str, extra: str = "") -> str:
    return "".join(
        f"{indent}- {{path: {directory / name}.jsonl{extra}"
        + (", group_field: source" if name in BY_DOCUMENT else "")
        + "}\n"
        for name in names
    )


def default_config(directory: Path, max_steps: int = 300) -> str:
    """A complete, commented config over the corpora in ``directory``."""
    missing = [n for n in REQUIRED if not (directory / f"{n}.jsonl").is_file()]
    if missing:
        raise TermwiseUserError(
            f"missing corpora: {', '.join(n + '.jsonl' for n in missing)}", path=directory
        )
    d = directory
    soft = ", neg_tier: soft_neg"
    return f"""# termwise btrm config: a multi-head Bradley-Terry reward model.
# Each head learns its own membership criterion from the same tokens: its positives against
# a tiered hierarchy of negatives (pair weights in tier_weights). Validate with
#   termwise btrm test-decoders -c THIS_FILE
#   termwise btrm sample-inputs -c THIS_FILE
# then train with
#   termwise btrm train -c THIS_FILE -o runs/btrm

backbone:
  path: null            # local Hugging Face model dir; null: all-MiniLM-L6-v2 (bundled)
  pooling: auto         # auto: masked mean for encoders, last non-pad token for causal LMs
  max_length: 128       # training tokens per sample; truncation cuts the text, never the prompt
  score_max_length: 256 # tokens when evaluating and scoring: the whole passage, cheaply
  disable_dropout: true # no backbone dropout in training (as TRL's reward trainer)

lora:
  enabled: true         # false: full fine-tuning
  r: 16
  alpha: 32
  dropout: 0.05
  target_modules: null  # null: the architecture's attention projections

# The same prompt wraps every sample, positive and negative, so "has a prompt" predicts nothing.
meta_prompt: "Does the following text belong to the collection each head describes?"

tier_weights:
  soft_neg: 2.0         # closest to the positives: the pairs that teach the boundary
  semi_firm_neg: 1.0
  furthest_neg: 0.5

# Every head's positives are soft negatives of every other head (null turns this off).
cross_corpus_negatives: soft_neg

logit_cap: 10.0         # soft tanh cap; 0 disables
log_square_weight: 0.3  # holds positive scores near r = 1
log_square_form: positive  # only minimum at r = +1 (abs: also at -1; see docs/results.md)
learning_rate: 0.0005
weight_decay: 0.0
balance_sources: true  # every source of a head equally often (73 sci-fi rows vs 1100 fiction)
heldout_fraction: 0.15  # per source (of its documents where group_field is set)
max_rows_per_source: null
on_bad_record: error    # error: stop at the first bad record; skip: skip and count them

trainer:
  max_steps: {max_steps}
  batch_size: 32
  health_every: 25
  log_every: 10
  checkpoint_every: 100
  seed: 0

heads:
  - name: fiction
    description: Narrative fiction (the five Brown fiction genres).
    positive_sources:
{_sources(d, FICTION, "      ")}
  - name: news
    description: Press reportage.
    positive_sources:
{_sources(d, ["brown_news"], "      ")}
  - name: learned
    description: Academic and scientific writing.
    positive_sources:
{_sources(d, ["brown_learned"], "      ")}
  - name: government
    description: Government documents and reports.
    positive_sources:
{_sources(d, ["brown_government"], "      ")}
  - name: reviews
    description: Film reviews.
    positive_sources:
{_sources(d, ["reviews"], "      ")}
  - name: multiturn_dialogue
    description: Raw multi-turn dialogue, several speakers in turn.
    positive_sources:
{_sources(d, DIALOGUE, "      ", ", tier_filter: flattened")}
    negative_sources:
      # single lines pulled out of the same dialogues: dialogue, but not multi-turn
{_sources(d, DIALOGUE, "      ", ", tier_filter: single_quote, neg_tier: semi_firm_neg")}
{_sources(d, PROSE, "      ", soft)}
{_sources(d, ["glossary_foldoc"], "      ", soft)}
  - name: glossary
    description: Glossary or dictionary entries.
    positive_sources:
{_sources(d, ["glossary_foldoc"], "      ")}
# Negatives of every head.
shared_negatives:
{_sources(d, ["reasoning_gsm8k", "reasoning_bbh"], "  ", ", neg_tier: semi_firm_neg")}
{_sources(d, ["encyclopedic_wikitext", "web_c4"], "  ", ", neg_tier: furthest_neg")}
""".replace("\n\n  - name", "\n  - name").replace("\n\n# Negatives", "\n# Negatives")
