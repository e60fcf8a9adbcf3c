"""The generic YAML loader: line numbers for keys and sequence items, pydantic errors → MappingError, LocatedError."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import model_validator

from connector.errors import MappingError
from connector.mapping.base import StrictModel, did_you_mean
from connector.mapping.loader import LocatedError, load_yaml_model, parse_yaml, validate_text


class Item(StrictModel):
    name: str
    weight: int = 1


class Circle(StrictModel):
    radius: float


class Square(StrictModel):
    side: float


class Doc(StrictModel):
    kind: Literal["alpha", "beta"]
    items: list[Item]
    refs: list[str] = []
    shape: Circle | Square | None = None
    weights: dict[str, int] = {}

    @model_validator(mode="after")
    def _refs_name_items(self) -> "Doc":
        names = {item.name for item in self.items}
        bad = [LocatedError(f'unknown item "{ref}"{did_you_mean(ref, names)}', ("refs", position))
               for position, ref in enumerate(self.refs) if ref not in names]
        if bad:
            raise LocatedError.many(bad)
        return self


GOOD = """\
kind: alpha
items:
  - name: apple
    weight: 3
  - name: pear
refs: [apple]
shape: {radius: 2}
"""


def _problems(text: str) -> list[MappingError]:
    return validate_text(text, Doc, file="doc.yaml").problems


def test_parse_yaml_indexes_keys_and_sequence_items():
    data, index, problems = parse_yaml(GOOD, "doc.yaml")
    assert problems == [] and data["items"][1]["name"] == "pear"
    assert index.line_of(("kind",)) == 1
    assert index.line_of(("items", 0)) == 3
    assert index.line_of(("items", 0, "weight")) == 4
    assert index.line_of(("items", 1, "name")) == 5
    assert index.line_of(("refs", 0)) == 6
    # a missing key points at its deepest existing parent
    assert index.line_of(("items", 1, "weight")) == 5
    assert index.line_of(("shape", "function-after[x]", "radius")) == 7  # pydantic tags are skipped


def test_load_yaml_model_valid(tmp_path):
    path = tmp_path / "doc.yaml"
    path.write_text(GOOD)
    doc = load_yaml_model(path, Doc)
    assert doc.items[0].weight == 3 and doc.shape == Circle(radius=2)


@pytest.mark.parametrize("text, line, expected", [
    pytest.param(GOOD.replace("weight: 3", "wieght: 3"), 4, ['items.0: unknown key "wieght"', 'did you mean "weight"'],
                 id="unknown-key-in-list-item"),
    pytest.param(GOOD.replace("weight: 3", "weight: heavy"), 4, ["items.0.weight", "valid integer", "'heavy'"],
                 id="wrong-type"),
    pytest.param(GOOD.replace("kind: alpha", "kind: alpah"), 1, ['kind: "alpah" is not valid', 'did you mean "alpha"'],
                 id="literal-near-miss"),
    pytest.param(GOOD.replace("kind: alpha", "kind: zzz"), 1, ["(valid: alpha, beta)"], id="literal-far-miss"),
    pytest.param(GOOD.replace("  - name: pear\n", "  - weight: 2\n"), 5, ['items.1: missing required key "name"'],
                 id="missing-key"),
    pytest.param(GOOD.replace("refs: [apple]", "refs: [apple, aple]"), 6, ['refs.1: unknown item "aple"',
                                                                            'did you mean "apple"'], id="located-error"),
    pytest.param(GOOD.replace("{radius: 2}", "{raduis: 2}"), 7, ['unknown key "raduis"', 'did you mean "radius"'],
                 id="union-member"),
    pytest.param(GOOD + "weights: {a: x}\n", 8, ["weights.a", "valid integer"], id="dict-value"),
    pytest.param(GOOD + "kind: beta\n", 8, ['duplicate key "kind" (first at line 1)'], id="duplicate-key"),
    pytest.param(GOOD.replace("refs: [apple]", "refs: [apple"), None, ["YAML syntax"], id="syntax"),
    pytest.param("- a\n- b\n", None, ["Input should be a valid dictionary", "got a list"], id="not-a-mapping"),
])
def test_validate_text_problem_has_line_and_choices(text, line, expected):
    problems = _problems(text)
    assert problems, "expected a problem"
    problem = next((p for p in problems if all(e in p.reason for e in expected)), None)
    assert problem is not None, [p.reason for p in problems]
    assert problem.file == "doc.yaml"
    if line is not None:
        assert problem.line == line
    else:
        assert problem.line is None or problem.line >= 1


def test_validate_text_reports_every_problem_at_once():
    text = GOOD.replace("kind: alpha", "kind: alpah").replace("weight: 3", "weight: heavy") + "extra: 1\n"
    problems = _problems(text)
    assert [p.line for p in problems] == [1, 4, 8]


def test_located_errors_report_each_offending_item():
    problems = _problems(GOOD.replace("refs: [apple]", "refs:\n  - aple\n  - apple\n  - peer"))
    assert [(p.line, p.reason) for p in problems] == [
        (7, 'refs.0: unknown item "aple" (did you mean "apple"?)'),
        (9, 'refs.2: unknown item "peer" (did you mean "pear"?)'),
    ]


def test_load_yaml_model_raises_with_all_problems(tmp_path):
    path = tmp_path / "doc.yaml"
    path.write_text("kind: gamma\nitems: []\nbogus: 1\n")
    with pytest.raises(MappingError) as caught:
        load_yaml_model(path, Doc)
    error = caught.value
    assert error.file == str(path) and error.line == 1
    assert [p.line for p in error.problems] == [1, 3]
    assert f"{path}:3: bogus" in str(error).replace('unknown key "bogus"', "bogus")


def test_empty_file_reports_missing_keys():
    problems = _problems("")
    assert {p.reason for p in problems} == {'missing required key "kind"', 'missing required key "items"'}
