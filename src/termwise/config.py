"""Config base: strict pydantic models and YAML loading with file:line errors.

Every recipe config derives from :class:`StrictModel`: unknown keys are rejected with the
closest valid name, values are validated at construction, every field carries help text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from termwise.errors import TermwiseUserError
from termwise.objective import suggest

ModelT = TypeVar("ModelT", bound="StrictModel")


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
"""A config field naming a file that must exist when the config is validated."""


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys with a suggestion."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = list(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(f"unknown key {key!r}{suggest(str(key), known)}")
        return data


def _node_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            # Point at the key's line: that is where the user reads the field name.
            key = next(k for k, v in node.value if v is match)
            line, node = key.start_mark.line + 1, match
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_yaml_config(path: str | Path, model: type[ModelT]) -> ModelT:
    """Parse and validate ``path``; any problem raises one :class:`TermwiseUserError`
    naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise TermwiseUserError("config file not found", path=path)
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(err, "problem", None) or str(err)
        raise TermwiseUserError(f"invalid YAML: {problem}", path=path, line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TermwiseUserError("the config must be a mapping of keys to values", path=path)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if message.startswith("unknown key"):
            loc = _unknown_key_loc(data, loc, message)
        field = ".".join(str(p) for p in loc) or None
        raise TermwiseUserError(
            message, path=path, line=_node_line(node, loc), field=field
        ) from None


def _unknown_key_loc(data: Any, loc: tuple[int | str, ...], message: str) -> tuple[int | str, ...]:
    """Extend ``loc`` with the unknown key named in ``message`` (pydantic stops at its parent)."""
    for part in loc:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return loc
    if isinstance(data, Mapping):
        for key in data:
            if f"unknown key {key!r}" in message:
                return (*loc, str(key))
    return loc


def commented_yaml(config: BaseModel, indent: str = "") -> str:
    """``config`` as YAML with each field's description as a comment above it: the help
    text lives once, on the model, and the written file can never disagree with it."""
    lines: list[str] = []
    for name, info in type(config).model_fields.items():
        value = getattr(config, name)
        if info.description:
            lines.append(f"{indent}# {info.description}")
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:")
            lines.append(commented_yaml(value, indent + "  ").rstrip("\n"))
            continue
        plain = str(value) if isinstance(value, Path) else value
        dumped = yaml.safe_dump({name: plain}, default_flow_style=True, width=10**6)
        lines.append(f"{indent}{dumped.strip().removeprefix('{').removesuffix('}')}")
    return "\n".join(lines) + "\n"
