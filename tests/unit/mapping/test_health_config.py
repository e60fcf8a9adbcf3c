"""mappings/health.yaml: the default loads; broken copies fail with file:line (and the column inside a rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import MappingError
from connector.mapping.health import HealthConfig
from connector.mapping.loader import load_yaml_model

ROOT = Path(__file__).resolve().parents[3]
HEALTH_YAML = ROOT / "mappings" / "health.yaml"


def test_default_health_yaml_loads():
    cfg = load_yaml_model(HEALTH_YAML, HealthConfig)
    assert [c.name for c in cfg.scorecards] == ["onboarding", "default"]
    assert cfg.band_labels() == ["red", "yellow", "green"]
    assert cfg.coverage_min == 0.5 and cfg.explanation.max_length == 100
    assert cfg.scorecards[0].when.startswith("is_active and") and cfg.scorecards[-1].when == "is_active"


def broken(tmp_path, old: str, new: str) -> str:
    text = HEALTH_YAML.read_text()
    assert old in text, old
    path = tmp_path / "health.yaml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


def line_of(path: str, needle: str) -> int:
    return next(i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "old, new, needle, message",
    [
        pytest.param("feature: onboarding_progress", "feature: onboarding_progres", "onboarding_progres",
                     'unknown feature "onboarding_progres" (did you mean "onboarding_progress"?)', id="feature-typo"),
        pytest.param("feature: payment_overdue", "feature: mrr", "feature: mrr",
                     'feature "mrr" is a number; method bool needs a bool feature', id="feature-kind"),
        pytest.param("method: linear_decay", "method: linear_decya", "linear_decya",
                     '"linear_decya" is not valid (did you mean "linear_decay"?)', id="method-typo"),
        pytest.param("target: 0.8", "taget: 0.8", "taget",
                     'unknown key "taget" (did you mean "target"?)', id="parameter-typo"),
        pytest.param("target: 0.8", "k: 0.8", "k: 0.8", '"k" does not apply to method target_ratio (it takes: target)',
                     id="parameter-of-other-method"),
        pytest.param("        target: 0.8\n", "", "name: seats", 'method target_ratio needs "target"',
                     id="parameter-missing"),
        pytest.param('explain: "NPS {raw}"', 'explain: "NPS {rwa}"', "{rwa}",
                     'unknown placeholder "{rwa}" in explain (did you mean "raw"?)', id="placeholder"),
        pytest.param('when: "is_active and tenure_days <= 90 and not onboarding_complete"',
                     'when: "is_active and tenure_dys <= 90 and not onboarding_complete"', "tenure_dys",
                     'column 15: unknown feature "tenure_dys" (did you mean "tenure_days"?)', id="rule-feature"),
        pytest.param('when: "is_active and tenure_days <= 90 and not onboarding_complete"',
                     'when: "is_active and tenure_days <= 90 and not onboarding_complete and health_score > 5"',
                     "health_score", 'column 65: unknown feature "health_score"', id="rule-cannot-read-health"),
        pytest.param('when: "is_active and tenure_days <= 90 and not onboarding_complete"',
                     'when: "is_active and tenure_days =< 90"', "=<",
                     'column 27: unexpected "=" (use "==" to compare)', id="rule-syntax"),
        pytest.param("{label: yellow, min: 51, max: 75}", "{label: yellow, min: 52, max: 75}", "bands:",
                     "bands leave a gap: no band covers 51", id="band-gap"),
        pytest.param("weight: 40", "weight: 0", "weight: 0", "greater than 0", id="weight-zero"),
        pytest.param("coverage_min: 0.5", "coverage_min: 1.5", "coverage_min", "less than or equal to 1",
                     id="coverage-range"),
    ],
)
def test_health_yaml_errors_point_at_file_and_line(tmp_path, old, new, needle, message):
    path = broken(tmp_path, old, new)
    with pytest.raises(MappingError) as info:
        load_yaml_model(path, HealthConfig)
    found = [(p.file, p.line) for p in info.value.problems if message in p.reason]
    assert found == [(path, line_of(path, needle))], info.value.problems


def test_health_yaml_reports_every_problem_at_once(tmp_path):
    path = broken(tmp_path, "feature: onboarding_progress", "feature: onboarding_progres")
    text = Path(path).read_text().replace("method: linear_decay", "method: linear_decya", 1)
    Path(path).write_text(text)
    with pytest.raises(MappingError) as info:
        load_yaml_model(path, HealthConfig)
    assert [p.line for p in info.value.problems] == [line_of(path, "onboarding_progres"), line_of(path, "linear_decya")]
