"""The engine API's examples run as written: every public module of the engine has at
least one, and none fails."""

import doctest
import importlib

import pytest

ENGINE = [
    "termwise.terms.contrastive",
    "termwise.terms.directional",
    "termwise.terms.kl",
    "termwise.terms.multihead",
    "termwise.terms.preference",
    "termwise.terms.ranking",
    "termwise.schedules",
    "termwise.objective",
    "termwise.health.monitor",
    "termwise.data.jsonl",
    "termwise.data.outputs",
    "termwise.models.saved",
]


@pytest.mark.parametrize("name", ENGINE)
def test_the_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
