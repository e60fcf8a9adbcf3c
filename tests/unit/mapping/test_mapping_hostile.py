"""Malformed and hostile mapping packs: every one is a file:line MappingError (a ConfigError), never a crash."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from connector.errors import ConfigError, MappingError
from connector.mapping import check_pack, load_pack
from connector.mapping.loader import MAX_FILE_BYTES

BUNDLED = Path(__file__).resolve().parents[3] / "mappings"
FILES = sorted(p.name for p in BUNDLED.glob("*.yaml"))


def _pack_with(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "pack"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(BUNDLED, folder)
    (folder / name).write_bytes(data)
    return folder


def _bundled(name: str) -> str:
    return (BUNDLED / name).read_text(encoding="utf-8")


def _alias_bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = [
    pytest.param("portal.yaml", lambda t: t.encode().replace(b"reporting", b"rep\xff\xfeorting", 1),
                 r"not UTF-8 text \(byte 0xff", True, id="non-utf8-bytes"),
    pytest.param("portal.yaml", lambda t: re.sub(r"rate_date: .*", "rate_date: 2026-13-45", t).encode(),
                 r"rate_date: .*month", True, id="impossible-date"),
    pytest.param("portal.yaml", lambda t: re.sub(r"rate_date: .*", "rate_date: !!timestamp x", t).encode(),
                 r"not a valid !!timestamp", True, id="bad-timestamp-tag"),
    pytest.param("health.yaml", lambda t: (_alias_bomb() + t).encode(),
                 r"once aliases are expanded", True, id="alias-bomb"),
    pytest.param("health.yaml", lambda t: ("loop: &loop [*loop]\n" + t).encode(),
                 r"alias that contains itself|nested more than", True, id="self-referencing-alias"),
    pytest.param("health.yaml", lambda t: ("deep: " + "[" * 3000 + "]" * 3000 + "\n" + t).encode(),
                 r"nesting depth|nested more than", True, id="deep-nesting"),
    pytest.param("segments.yaml", lambda t: (t + "#" * (MAX_FILE_BYTES + 1)).encode(),
                 r"larger than 1 MiB", False, id="oversized-file"),
    pytest.param("sources.yaml", lambda t: b"\x00\x01\x02\xfe\xff" * 50, r"not UTF-8|YAML", False, id="binary"),
    pytest.param("portal.yaml", lambda t: t.replace("portal:", "portal: !!python/object:os.system", 1).encode()
                 if "portal:" in t else b"x: !!python/object:os.system\n", r"YAML", True, id="python-tag"),
]


@pytest.mark.parametrize(("name", "mutate", "reason", "has_line"), HOSTILE)
def test_check_pack_hostile_file_is_a_located_problem(tmp_path, name, mutate, reason, has_line):
    folder = _pack_with(tmp_path, name, mutate(_bundled(name)))

    pack, problems = check_pack(folder)

    assert pack is None
    mine = [p for p in problems if Path(p.file).name == name]
    assert mine, problems
    assert any(re.search(reason, p.reason) for p in mine), [p.reason for p in mine]
    if has_line:
        assert all(p.line is not None and p.line >= 1 for p in mine), [str(p) for p in mine]
    with pytest.raises(MappingError):
        load_pack(folder)


def test_check_pack_alias_bomb_stops_before_expanding(tmp_path):
    # nine levels of nine aliases would be 9**10 (3.5 billion) values once built: the loader must refuse first
    folder = _pack_with(tmp_path, "health.yaml", (_alias_bomb(levels=9) + _bundled("health.yaml")).encode())

    _, problems = check_pack(folder)

    bomb = [p for p in problems if "aliases" in p.reason]
    assert bomb and bomb[0].line is not None and bomb[0].line <= 10


def test_check_pack_plain_dates_still_validate(tmp_path):
    # dates are read as text and validated by the schema: a valid one still loads
    text = re.sub(r"rate_date: .*", "rate_date: 2024-02-29", _bundled("portal.yaml"))
    pack = load_pack(_pack_with(tmp_path, "portal.yaml", text.encode()))
    assert str(pack.portal.currency.rate_date) == "2024-02-29"


# ---------------------------------------------------------------- fuzzing: anything but ConfigError is a bug

YAML_PIECES = ["&a ", "*a", "*b", "<<: *a", "!!timestamp ", "!!binary ", "!!float ", "!!python/name:os.system",
               "2026-13-45", "2026-02-30T25:61:00Z", ": ", "- ", "? ", "{", "}", "[", "]", "'", '"', "\t", "\n",
               "\x00", "\ufeff", "%YAML 1.1\n", "---\n", "...\n", "|\n", ">-\n", "1e999", "-.inf", "~", "null",
               "\\x", "é", "😀", "#"]


def _load_never_crashes(folder: Path) -> None:
    try:
        load_pack(folder)
    except ConfigError:
        pass  # a located problem is the right answer; any other exception fails the test


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FILES), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.binary(max_size=4)),
                                                   min_size=1, max_size=6))
def test_load_pack_fuzzed_bytes_raise_only_config_errors(tmp_path, name, edits):
    data = bytearray((BUNDLED / name).read_bytes())
    for where, op, chunk in edits:
        at = int(where * len(data))
        if op == 0:
            data[at:at] = chunk  # insert
        elif op == 1:
            data[at:at + len(chunk)] = chunk  # overwrite
        elif op == 2:
            del data[at:at + 1 + len(chunk)]  # delete
        else:
            data[at:at] = data[max(0, at - 40):at]  # duplicate what precedes (repeated keys, aliases)
    _load_never_crashes(_pack_with(tmp_path, name, bytes(data)))


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FILES), edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(YAML_PIECES)),
                                                   min_size=1, max_size=6))
def test_load_pack_fuzzed_yaml_text_raises_only_config_errors(tmp_path, name, edits):
    text = _bundled(name)
    for where, piece in edits:
        at = int(where * len(text))
        text = text[:at] + piece + text[at:]
    _load_never_crashes(_pack_with(tmp_path, name, text.encode("utf-8", "surrogatepass")))
