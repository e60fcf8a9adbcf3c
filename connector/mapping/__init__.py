"""The mapping pack: YAML under mappings/ loaded with line numbers into strict pydantic models."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.errors import MappingError
from connector.mapping.loader import LineIndex, LoadResult, LocatedError, load_yaml_model, raise_problems, validate_yaml
from connector.mapping.portal import PortalConfig
from connector.mapping.sources import PullSpec, SourcesConfig, plan_pull

__all__ = [
    "MappingPack", "PullSpec", "load_pack", "check_pack", "load_yaml_model", "LocatedError", "MappingError",
    "PortalConfig", "SourcesConfig", "OPTIONAL_FILES",
]

# Files other stages own: file name -> "module.Class". Loaded when both the schema module and the file exist.
OPTIONAL_FILES: dict[str, str] = {
    "health.yaml": "connector.mapping.health.HealthConfig",
    "segments.yaml": "connector.mapping.segments.SegmentsConfig",
    "writeback.yaml": "connector.mapping.writeback.WritebackConfig",
}


@dataclass
class MappingPack:
    """Every mapping file of one directory, validated together."""

    directory: Path
    portal: PortalConfig
    sources: SourcesConfig
    health: Any = None
    segments: Any = None
    writeback: Any = None
    indexes: dict[str, LineIndex] = field(default_factory=dict, repr=False)  # file name -> key lines

    def pull_plan(self, extra_properties: dict[str, tuple[str, ...]] | None = None) -> dict[str, PullSpec]:
        """Per HubSpot object type: properties (+ ids/timestamps), historical ones, association to-types."""
        return plan_pull(self.sources, extra_properties)

    def line_of(self, file: str, path: tuple[Any, ...]) -> int | None:
        index = self.indexes.get(file)
        return index.line_of(path) if index else None

    def error(self, file: str, path: tuple[Any, ...], reason: str) -> MappingError:
        """A MappingError pointing at ``path`` in one of the pack's files (for checks done after loading)."""
        index = self.indexes.get(file)
        return MappingError(index.file if index else str(self.directory / file), self.line_of(file, path), reason)

    def customer_source(self):
        """The sources.yaml section of the customer object (companies or contacts)."""
        return getattr(self.sources, self.portal.customer.object)


def load_pack(directory: str | Path = "mappings") -> MappingPack:
    """Load and cross-check every file of the pack; MappingError lists every problem of every file at once."""
    pack, problems = check_pack(directory)
    raise_problems(problems)
    assert pack is not None
    return pack


def check_pack(directory: str | Path = "mappings") -> tuple[MappingPack | None, list[MappingError]]:
    """(pack or None, problems): the non-raising form used by `connector mappings validate`."""
    directory = Path(directory)
    problems: list[MappingError] = []
    if not directory.is_dir():
        return None, [MappingError(str(directory), None, "mapping directory not found")]
    results: dict[str, LoadResult] = {}
    for name, model_cls in (("portal.yaml", PortalConfig), ("sources.yaml", SourcesConfig)):
        results[name] = validate_yaml(directory / name, model_cls)
    optional: dict[str, Any] = {}
    for name, dotted in OPTIONAL_FILES.items():
        path = directory / name
        model_cls = _optional_class(dotted)
        if model_cls is None or not path.exists():
            continue
        results[name] = validate_yaml(path, model_cls)
    for result in results.values():
        problems.extend(result.problems)
    portal, sources = results["portal.yaml"].model, results["sources.yaml"].model
    if portal is None or sources is None:
        return None, problems
    pack = MappingPack(
        directory=directory, portal=portal, sources=sources,
        indexes={name: result.index for name, result in results.items()},
        **{name.removesuffix(".yaml"): result.model for name, result in results.items() if name in OPTIONAL_FILES},
    )
    problems.extend(_cross_check(pack))
    if any(result.model is None for result in results.values()):
        return None, problems
    return (None if problems else pack), problems


def _optional_class(dotted: str) -> type | None:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # not written yet; a broken import inside it must still surface
            return None
        raise
    return getattr(module, class_name, None)


def _cross_check(pack: MappingPack) -> list[MappingError]:
    """Checks that span portal.yaml and sources.yaml."""
    problems: list[MappingError] = []
    portal, sources = pack.portal, pack.sources
    customer_entity = portal.customer.object
    customer_source = getattr(sources, customer_entity)
    if customer_source is None:
        problems.append(pack.error("portal.yaml", ("customer", "object"),
                                   f'customer.object: "{customer_entity}" has no section in sources.yaml'))
    elif sources.usage is not None and sources.usage.object != customer_source.object:
        problems.append(pack.error("sources.yaml", ("usage", "object"),
                                   f'usage.object: usage is read from the customer object "{customer_source.object}" '
                                   f'(portal.yaml customer.object), not "{sources.usage.object}"'))
    rates = portal.currency.rates
    for entity, source in sources.entities():
        for name, spec in source.fields.items():
            if spec.currency and spec.currency != portal.currency.reporting and spec.currency not in rates:
                problems.append(pack.error("sources.yaml", (entity, "fields", name, "currency"),
                                           f'{entity}.fields.{name}.currency: no FX rate for "{spec.currency}" in '
                                           f"portal.yaml currency.rates (has: {', '.join(sorted(rates)) or 'none'})"))
    if customer_source is not None:
        problems.extend(_needed_associations(pack, customer_source.object))
    # Names one file gives and another uses: health bands in segment rules, segment tags in enrollment rules.
    if pack.health is not None and pack.segments is not None:
        for path, reason in pack.segments.check_health([band.label for band in pack.health.bands]):
            problems.append(pack.error("segments.yaml", path, reason))
    if pack.segments is not None and pack.writeback is not None:
        for path, reason in pack.writeback.check_tags([tag.name for tag in pack.segments.tags()]):
            problems.append(pack.error("writeback.yaml", path, reason))
    return problems


def _needed_associations(pack: MappingPack, customer_type: str) -> list[MappingError]:
    """Every mapped entity must be reachable from the customer through declared associations."""
    sources = pack.sources
    contacts = sources.contacts.object if sources.contacts else None
    needs: list[tuple[str, list[str]]] = []  # (entity, object types it may attach to, any one suffices)
    if sources.contacts and customer_type != contacts:
        needs.append(("contacts", [customer_type]))
    for entity in ("subscriptions", "deals", "feedback"):
        source = getattr(sources, entity)
        if source is not None:
            needs.append((entity, [t for t in (customer_type, contacts) if t]))
    if sources.line_items:
        needs.append(("line_items", [s.object for s in (sources.deals, sources.subscriptions) if s]))
    problems = []
    for entity, targets in needs:
        own = getattr(sources, entity).object
        if not any(sources.has_association(own, target) for target in targets):
            wanted = " or ".join(f"{{from: {own}, to: {t}}}" for t in targets) or "a parent object"
            problems.append(pack.error("sources.yaml", ("associations",),
                                       f"associations: {entity} cannot be tied to a customer; add {wanted}"))
    return problems
