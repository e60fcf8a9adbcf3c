"""Generic YAML → pydantic loader: every problem of a file reported at once, each with file:line and valid choices.

Any schema module gets file:line for free: ``load_yaml_model(path, Model)``. A cross-reference check in a
validator raises ``LocatedError(message, at=(key, index, ...))`` (a ``ValueError``) so the loader can point at the
offending key below the validated value rather than at the value itself; several at once with
``LocatedError.many([...])``. A schema may also define ``raw_problems(data: dict) -> list[LocatedError]``
(classmethod, paths from the file's root) for cross-references that can be checked on the raw data: the loader
runs it when validation failed elsewhere, so those problems are reported in the same pass.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from connector.errors import MappingError
from connector.mapping.base import did_you_mean

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[Any, ...]

# Bounds that keep a hostile or broken file from exhausting the process: a pack's files are a few kB each.
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000  # counted with aliases expanded, so an alias bomb stops here, before anything is built
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader (marks kept, several times faster on a large pack) that leaves dates to the schema.

    PyYAML turns an implicit ``2026-13-45`` into a ``datetime.date`` and raises a bare ValueError on an impossible
    one; as plain text the schema's own ``date`` field validates it and reports file:line like any other value.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in getattr(yaml, "CSafeLoader", yaml.SafeLoader).yaml_implicit_resolvers.items()
    }

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        # an explicit ``!!timestamp x``: PyYAML's constructor fails with AttributeError on text it cannot match
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, TypeError, AttributeError):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid !!timestamp", node.start_mark) from None


_Loader.add_constructor(_TIMESTAMP_TAG, _Loader.construct_yaml_timestamp)


class _TooLarge(Exception):
    """The document is deeper or (aliases expanded) larger than the bounds above."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


class LocatedError(ValueError):
    """A validator's complaint about a key below the value it validates: ``at`` is the path relative to it."""

    def __init__(self, message: str, at: Iterable[Any] = ()):
        super().__init__(message)
        self.problems: list[tuple[KeyPath, str]] = [(tuple(at), message)]

    @classmethod
    def many(cls, errors: Iterable["LocatedError"]) -> "LocatedError":
        errors = list(errors)
        first = errors[0]
        combined = cls(str(first), ())
        combined.problems = [p for e in errors for p in e.problems]
        return combined


@dataclass
class LineIndex:
    """Line (1-based) of every mapping key and sequence item of one YAML file, by key path."""

    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[Any]) -> int | None:
        """Line of the deepest existing prefix of ``path`` (a missing key points at its parent)."""
        best = self.lines.get((), None)
        current: KeyPath = ()
        for element in path:
            candidate = current + (_key(element),)
            if candidate in self.lines:
                current = candidate
                best = self.lines[candidate]
            # else: a pydantic union tag or '[key]' marker, not a YAML key: skip it and keep walking
        return best

    def error(self, path: Iterable[Any], reason: str) -> MappingError:
        return MappingError(self.file, self.line_of(path), reason)


@dataclass
class LoadResult:
    """What validating one file gave: the model (None when invalid), its line index and its problems."""

    model: Any
    index: LineIndex
    problems: list[MappingError]


def _key(element: Any) -> Any:
    # YAML keys are indexed as strings (``9: promoter`` and ``"9": promoter`` are the same key to us).
    return element if isinstance(element, int) and not isinstance(element, bool) else str(element)


def parse_yaml(text: str, file: str) -> tuple[Any, LineIndex, list[MappingError]]:
    """Parse YAML keeping the line of every key; duplicate keys and syntax errors become problems."""
    index = LineIndex(file)
    problems: list[MappingError] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, index, problems
        _index_node(node, (), index, problems, [MAX_NODES])
        data = loader.construct_document(node)
    except _TooLarge as exc:
        problems.append(MappingError(file, exc.line, exc.reason))
        return None, index, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problems.append(MappingError(file, line, f"YAML syntax: {exc.problem or exc.context}"))
        return None, index, problems
    except yaml.YAMLError as exc:
        problems.append(MappingError(file, None, f"YAML: {exc}"))
        return None, index, problems
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # a value PyYAML's constructors choke on (they raise bare Python errors for some tags): still file-level
        problems.append(MappingError(file, None, f"YAML: cannot read a value ({type(exc).__name__}: {exc})"))
        return None, index, problems
    finally:
        loader.dispose()
    return data, index, problems


def _index_node(node: yaml.Node, path: KeyPath, index: LineIndex, problems: list[MappingError],
                budget: list[int]) -> None:
    line = node.start_mark.line + 1
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge(line, f"more than {MAX_NODES:,} values once aliases are expanded (an alias repeated "
                              "inside aliases?): write the values out or use fewer levels of aliases")
    if len(path) > MAX_DEPTH:
        raise _TooLarge(line, f"nested more than {MAX_DEPTH} levels deep (or an alias that contains itself)")
    index.lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in first_seen:
                # PyYAML silently keeps the last one; a duplicated key is almost always a paste error.
                problems.append(MappingError(index.file, line, f'duplicate key "{key}" (first at line {first_seen[key]})'))
                continue
            first_seen[key] = line
            child = path + (key,)
            index.lines[child] = line
            _index_node(value_node, child, index, problems, budget)
            index.lines[child] = line  # the key's line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index_node(item, path + (position,), index, problems, budget)


def validate_yaml(path: str | Path, model_cls: type[M], *, context: dict | None = None, file: str | None = None) -> LoadResult:
    """Read and validate one YAML file into ``model_cls``; never raises for a bad mapping (see ``problems``)."""
    name = file or str(path)
    text, problem = read_yaml_text(path, name)
    if problem is not None:
        return LoadResult(None, LineIndex(name), [problem])
    return validate_text(text, model_cls, file=name, context=context)


def read_yaml_text(path: str | Path, name: str) -> tuple[str, MappingError | None]:
    """The file's text, or the problem that stops it being read: unreadable, too large, not UTF-8 (with its line)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return "", MappingError(name, None, f"cannot read: {exc.strerror or exc}")
    if len(raw) > MAX_FILE_BYTES:
        return "", MappingError(name, None, f"larger than {MAX_FILE_BYTES // (1 << 20)} MiB: not a mapping file?")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return "", MappingError(name, line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}): "
                                            "save the file as UTF-8")


def validate_text(text: str, model_cls: type[M], *, file: str, context: dict | None = None) -> LoadResult:
    data, index, problems = parse_yaml(text, file)
    if problems:
        return LoadResult(None, index, problems)
    if data is None:
        data = {}
    try:
        model = model_cls.model_validate(data, context=context)
    except ValidationError as exc:
        problems = problems_from_validation(exc, model_cls, index)
        # pydantic skips a container's validators once something inside it failed; checks that can read the raw
        # data (a schema's optional ``raw_problems`` classmethod) still run, so one pass reports every problem.
        raw_check = getattr(model_cls, "raw_problems", None)
        if raw_check is not None and isinstance(data, dict):
            seen = {(p.line, p.reason) for p in problems}
            for located in raw_check(data):
                for rel, message in located.problems:
                    extra = MappingError(index.file, index.line_of(rel), _prefixed(rel, message))
                    if (extra.line, extra.reason) not in seen:
                        seen.add((extra.line, extra.reason))
                        problems.append(extra)
            problems.sort(key=lambda p: p.line or 0)
        return LoadResult(None, index, problems)
    return LoadResult(model, index, [])


def load_yaml_model(path: str | Path, model_cls: type[M], *, context: dict | None = None) -> M:
    """Validated model of one YAML file, or MappingError naming file:line of every problem."""
    result = validate_yaml(path, model_cls, context=context)
    raise_problems(result.problems)
    return result.model


def raise_problems(problems: list[MappingError]) -> None:
    if problems:
        first = problems[0]
        raise MappingError(first.file, first.line, first.reason, problems=list(problems))


# ---------------------------------------------------------------- pydantic errors → MappingError


def problems_from_validation(exc: ValidationError, model_cls: type[BaseModel], index: LineIndex) -> list[MappingError]:
    out: list[MappingError] = []
    seen: set[tuple[int | None, str]] = set()
    for err in exc.errors():
        for loc, where, message in _reasons(err, model_cls):
            line = index.line_of(loc)
            reason = _prefixed(_yaml_keys(where, index), message)
            key = (line, reason)
            if key not in seen:
                seen.add(key)
                out.append(MappingError(index.file, line, reason))
    out.sort(key=lambda p: (p.line or 0))
    return out


def _yaml_keys(loc: KeyPath, index: LineIndex) -> KeyPath:
    """The parts of a pydantic location that are YAML keys (drops union member tags such as 'Circle')."""
    kept: KeyPath = ()
    path: KeyPath = ()
    for part in loc:
        candidate = path + (_key(part),)
        if candidate in index.lines:
            path = candidate
            kept += (part,)
    return kept


def _reasons(err: dict[str, Any], model_cls: type[BaseModel]) -> list[tuple[KeyPath, KeyPath, str]]:
    """(location for the line, location for the dotted prefix, message) of one pydantic error."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    given = err.get("input")
    original = ctx.get("error")
    if isinstance(original, LocatedError):
        return [(loc + rel, loc + rel, message) for rel, message in original.problems]
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        valid = _keys_at(model_cls, loc[:-1])
        return [(loc, loc[:-1], f'unknown key "{name}"{did_you_mean(name, valid) if valid else ""}')]
    if kind == "missing":
        return [(loc, loc[:-1], f'missing required key "{loc[-1] if loc else "?"}"')]
    if kind in ("literal_error", "enum"):
        choices = _choices_at(model_cls, loc)
        text = str(given)
        hint = did_you_mean(text, choices) if choices else f" (expected {ctx.get('expected', '?')})"
        return [(loc, loc, f'"{text}" is not valid{hint}')]
    if kind in ("value_error", "assertion_error"):
        message = str(original) if original is not None else err.get("msg", "")
        return [(loc, loc, message)]
    message = err.get("msg", kind)
    if given is not None and not isinstance(given, (dict, list)):
        message = f"{message}, got {_short(given)}"
    elif isinstance(given, (dict, list)) and kind.endswith("_type"):
        message = f"{message}, got a {'mapping' if isinstance(given, dict) else 'list'}"
    return [(loc, loc, message)]


def _prefixed(loc: KeyPath, message: str) -> str:
    dotted = ".".join(str(p) for p in loc if _is_key_like(p))
    return f"{dotted}: {message}" if dotted else message


def _is_key_like(part: Any) -> bool:
    # pydantic adds union tags such as 'function-after[...]' or '[key]' to locations; they are not YAML keys
    return not (isinstance(part, str) and ("[" in part or "(" in part))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- what is valid where (walks the annotations)


def _keys_at(model_cls: type[BaseModel], loc: KeyPath) -> list[str]:
    keys: list[str] = []
    for tp in (m for t in _types_at(model_cls, loc) for m in _members(t)):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, info in tp.model_fields.items():
                keys.append(info.alias or name)
    return keys


def _choices_at(model_cls: type[BaseModel], loc: KeyPath) -> list[str]:
    choices: list[str] = []
    for tp in _types_at(model_cls, loc):
        for member in _members(tp):
            if typing.get_origin(member) is typing.Literal:
                choices.extend(str(a) for a in typing.get_args(member))
            elif isinstance(member, type) and issubclass(member, Enum):
                choices.extend(str(m.value) for m in member)
    return choices


def _types_at(model_cls: type[BaseModel], loc: KeyPath) -> list[Any]:
    current: list[Any] = [model_cls]
    for part in loc:
        following = [t for tp in current for t in _step(tp, part)]
        if following:  # parts that match nothing are union tags: stay where we are
            current = following
    return current


def _members(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg)]
    return [tp]


def _step(tp: Any, part: Any) -> list[Any]:
    out: list[Any] = []
    for member in _members(tp):
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(part, str):
            for name, info in member.model_fields.items():
                if part in (name, info.alias):
                    out.append(info.annotation)
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
            out.append(args[0])
        elif origin is dict and len(args) == 2 and not (isinstance(part, str) and part == "[key]"):
            out.append(args[1])
    return out
