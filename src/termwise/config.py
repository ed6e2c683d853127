"""Config base: strict pydantic models and YAML loading with file:line errors.

Every recipe config derives from :class:`StrictModel`: unknown keys are rejected with the
closest valid name, values are validated at construction, every field carries help text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from termwise.errors import TermwiseUserError, suggest

ModelT = TypeVar("ModelT", bound="StrictModel")

# Upper bounds of the size fields: far above anything trained on one machine, low enough
# that a typo (1.0e9) is refused here, with its limit, before anything is allocated.
MAX_WIDTH = 65_536  # hidden sizes, embedding, latent and LoRA widths
MAX_DEPTH = 1_024  # layers, attention heads, latent tokens, workers, kept checkpoints
MAX_LENGTH = 1_000_000  # tokens or sentences per example, window lengths
MAX_BATCH = 1_000_000  # examples per batch
MAX_SAMPLES = 100_000  # Monte Carlo or importance samples per example
MAX_COUNT = 10**9  # steps, epochs, examples, rows, vocabulary entries
# What a YAML config may be: a document a person writes, never an alias bomb.
MAX_CONFIG_BYTES = 4 * 2**20
MAX_CONFIG_NODES = 100_000  # values after aliases are expanded


def _existing_file(path: Path) -> Path:
    if path.is_dir():
        raise ValueError(f"is a directory, expected a file: {path}")
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


def check_heads_divide(width: int, heads: int, width_name: str) -> None:
    """Attention needs ``width`` to split evenly over ``heads`` (a config validator's check)."""
    if width % heads:
        raise ValueError(f"{width_name} ({width}) must be divisible by heads ({heads})")


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


def compose_bounded(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of ``text``, refused (one error naming ``path``) when it is not
    YAML, nests too deeply, or expands past :data:`MAX_CONFIG_NODES` values through its
    aliases (a "billion laughs" document composes in microseconds and then hangs whatever
    walks it)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(err, "problem", None) or str(err)
        raise TermwiseUserError(f"invalid YAML: {problem}", path=path, line=line) from None
    except RecursionError:
        raise TermwiseUserError("YAML nested too deeply for a config", path=path) from None
    if node is not None and _expanded_size(node, MAX_CONFIG_NODES) > MAX_CONFIG_NODES:
        raise TermwiseUserError(
            f"YAML of over {MAX_CONFIG_NODES} values once its aliases (&/*) are expanded; "
            "a config needs far fewer",
            path=path,
        )
    return node


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes ``root`` is with every alias expanded, counted up to just past
    ``limit``: each distinct node is sized once (memoised), so a bomb costs its own size."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            total = 1 + sum(sizes.get(id(child), 0) for child in children)
            sizes[id(node)] = min(total, limit + 1)
            continue
        stack.append((node, True))
        if len(stack) > limit:
            return limit + 1
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml_config(path: str | Path, model: type[ModelT]) -> ModelT:
    """Parse and validate ``path``; any problem raises one :class:`TermwiseUserError`
    naming the file, line and field."""
    path = Path(path)
    if path.is_dir():
        raise TermwiseUserError("is a directory, expected a YAML config file", path=path)
    if not path.is_file():
        raise TermwiseUserError("config file not found", path=path)
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise TermwiseUserError(
            f"{path.stat().st_size} bytes, over the limit of {MAX_CONFIG_BYTES} for a config",
            path=path,
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TermwiseUserError(
            f"not UTF-8 text (byte {error.start}); save the config as UTF-8",
            path=path,
            line=raw[: error.start].count(b"\n") + 1,
        ) from None
    node = compose_bounded(text, path)
    _refuse_duplicate_keys(node, path)
    data = None if node is None else yaml.SafeLoader("").construct_document(node)
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
        loc, message = _union_error(data, err.errors(), loc, message)
        if message.startswith("unknown key"):
            loc = _unknown_key_loc(data, loc, message)
        field = ".".join(str(p) for p in loc) or None
        raise TermwiseUserError(
            message, path=path, line=_node_line(node, loc), field=field
        ) from None


def _present(data: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The longest prefix of ``loc`` that names a value in ``data``."""
    here, kept = data, []
    for part in loc:
        if isinstance(here, dict) and part in here:
            here = here[part]
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        else:
            break
        kept.append(part)
    return tuple(kept)


def _union_error(
    data: Any, errors: list[Any], loc: tuple[int | str, ...], message: str
) -> tuple[tuple[int | str, ...], str]:
    """A value that fits no member of a union (``float | "auto"``) fails once per member,
    each with the member's tag after the field (``free_bits.constrained-float``): one
    message on the field, the members' requirements joined by "or"."""
    field = _present(data, loc)
    if len(loc) != len(field) + 1:
        return loc, message
    same = [e for e in errors if len(e["loc"]) == len(loc) and _present(data, e["loc"]) == field]
    if len(same) < 2:
        return loc, message
    wants = [e["msg"].removeprefix("Value error, ").removeprefix("Input should be ") for e in same]
    return field, "should be " + " or ".join(wants)


def _refuse_duplicate_keys(node: yaml.Node | None, path: Path, where: str = "") -> None:
    """YAML lets a key appear twice and keeps the last value; a config never means that."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            name = getattr(key, "value", None)
            line = key.start_mark.line + 1
            field = f"{where}.{name}" if where else str(name)
            if isinstance(name, str) and name in seen:
                raise TermwiseUserError(
                    f"duplicated key (first on line {seen[name]}); keep one of them",
                    path=path,
                    line=line,
                    field=field,
                )
            seen[name] = line
            _refuse_duplicate_keys(value, path, field)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, path, f"{where}.{index}" if where else str(index))


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


def commented_yaml(config: BaseModel, header: str | None = None, complete: bool = False) -> str:
    """``config`` as YAML with each field's description as a comment above it: the help
    text lives once, on the model, and the written file can never disagree with it.

    A list of models is written one item per entry: flat items as one flow mapping of the
    fields that differ from their defaults, nested ones as blocks; the item fields' help
    comes once per item type, above its first list. ``header`` becomes a comment block.
    ``complete`` keeps the defaults in list items too (a run's recorded config, where
    ``termwise health fix`` must find every value it may change)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] + [""] if header else []
    lines += _model_lines(config, "", _Writing(complete))
    return "\n".join(lines) + "\n"


def _comment(text: str, indent: str) -> list[str]:
    wrapped = textwrap.wrap(text, width=96 - len(indent), break_on_hyphens=False)
    return [f"{indent}# {line}" for line in wrapped]


@dataclass
class _Writing:
    complete: bool  # keep defaults in list items
    seen: set[type] = field(default_factory=set)  # item types whose help was written


def _model_lines(
    model: BaseModel, indent: str, writing: _Writing, in_list: bool = False
) -> list[str]:
    lines: list[str] = []
    skipped = _defaulted(model) if in_list and not writing.complete else set()
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if name in skipped:
            continue
        if not in_list and info.description:
            lines += _comment(info.description, indent)
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:")
            lines += _model_lines(value, indent + "  ", writing, in_list)
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            lines.append(f"{indent}{name}:")
            lines += _list_lines(value, indent + "  ", writing)
        else:
            lines.append(f"{indent}{_flow({name: _plain(value)})}")
    return lines


def _list_lines(items: list[BaseModel], indent: str, writing: _Writing) -> list[str]:
    kind = type(items[0])
    lines: list[str] = []
    if kind not in writing.seen:  # the item fields' help, once per item type
        writing.seen.add(kind)
        for name, info in kind.model_fields.items():
            lines += _comment(f"{name}: {info.description}", indent)
    for item in items:
        nested = any(
            isinstance(v, BaseModel) or (isinstance(v, list) and v and isinstance(v[0], BaseModel))
            for v in (getattr(item, name) for name in kind.model_fields)
        )
        if not nested:
            defaulted = set() if writing.complete else _defaulted(item)
            kept = {k: _plain(getattr(item, k)) for k in kind.model_fields if k not in defaulted}
            lines.append(f"{indent}- {{{_flow(kept)}}}")
            continue
        body = _model_lines(item, indent + "  ", writing, in_list=True)
        lines.append(f"{indent}- {body[0].removeprefix(indent + '  ')}")
        lines += body[1:]
    return lines


def _defaulted(model: BaseModel) -> set[str]:
    """Fields whose value equals their default (left out of list items)."""
    out = set()
    for name, info in type(model).model_fields.items():
        if info.is_required():
            continue
        if getattr(model, name) == info.get_default(call_default_factory=True):
            out.add(name)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _flow(mapping: dict[str, Any]) -> str:
    """``key: value, ...`` on one line (YAML flow style, order kept)."""
    dumped = yaml.safe_dump(mapping, default_flow_style=True, width=10**6, sort_keys=False)
    return dumped.strip().removeprefix("{").removesuffix("}")


def write_config(
    path: Path,
    config: BaseModel,
    model: type[StrictModel],
    header: str | None = None,
    force: bool = False,
) -> None:
    """Write ``config`` as commented YAML (atomically) and check that it loads back. An
    existing file (perhaps edited by hand) is replaced only with ``force``."""
    from termwise.data.jsonl import check_output, write_bytes_atomic

    check_output(path, force=True)
    if path.exists() and not force:
        raise TermwiseUserError("exists; pass --force to overwrite it", path=path)

    write_bytes_atomic(path, commented_yaml(config, header).encode("utf-8"))
    load_yaml_config(path, model)  # what we write must validate
