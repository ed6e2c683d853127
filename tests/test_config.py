from pathlib import Path

import pytest
from pydantic import Field, ValidationError

from termwise.config import StrictModel, commented_yaml, load_yaml_config
from termwise.errors import TermwiseUserError


class Inner(StrictModel):
    steps: int = Field(1, gt=0, description="steps")


class Outer(StrictModel):
    name: str = Field("x", description="name")
    inner: Inner = Field(default_factory=Inner, description="inner")
    items: list[Inner] = Field(default_factory=list, description="items")


def test_unknown_key_suggests_closest():
    with pytest.raises(ValidationError, match="did you mean 'steps'"):
        Inner.model_validate({"step": 3})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\ninner:\n  steps: 0\n", ":3: inner.steps: Input should be greater than 0"),
        ("name: a\nitems:\n  - steps: 2\n  - stepz: 2\n", ":4: items.1.stepz: unknown key"),
        ("nam: a\n", ":1: nam: unknown key 'nam' (did you mean 'name'?)"),
        ("name: [a\n", "invalid YAML"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_yaml_errors_name_file_line_field(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(TermwiseUserError) as info:
        load_yaml_config(path, Outer)
    assert expected in str(info.value) and str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_valid_and_missing_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  steps: 4\n")
    assert load_yaml_config(path, Outer).inner.steps == 4
    with pytest.raises(TermwiseUserError, match="not found"):
        load_yaml_config(tmp_path / "nope.yaml", Outer)


class Rates(StrictModel):
    rate: float = Field(0.5, description="How fast.")
    names: list[str] = Field(default_factory=lambda: ["a", "b"], description="Some names.")


class Documented(StrictModel):
    path: Path | None = Field(None, description="A file.")
    inner: Rates = Field(default_factory=Rates, description="Nested settings.")


def test_commented_yaml_round_trips_with_descriptions(tmp_path):
    config = Documented(path=Path("x/y.txt"), inner=Rates(rate=2.0))
    text = commented_yaml(config)
    assert text.splitlines()[:3] == ["# A file.", "path: x/y.txt", "# Nested settings."]
    assert "  # How fast.\n  rate: 2.0\n" in text
    (tmp_path / "c.yaml").write_text(text)
    assert load_yaml_config(tmp_path / "c.yaml", Documented) == config
