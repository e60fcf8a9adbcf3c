"""Several portals in one sandbox, each with its hub id, data, tokens and limits: found by hub id or by token."""

from __future__ import annotations

from typing import Iterable, Iterator

from connector.sandbox.portal import Portal


class PortalRegistry:
    """The portals one sandbox serves, in the order given (the first is the primary, the default of a bare request).

    A request is served by the portal that minted its bearer token; a token no portal knows (or none) goes to the
    primary, which answers 401 for it exactly as a one-portal sandbox does.
    """

    def __init__(self, portals: Iterable[Portal]):
        self._by_hub_id: dict[int, Portal] = {}
        for portal in portals:
            self.add(portal)
        if not self._by_hub_id:
            raise ValueError("a sandbox needs at least one portal")

    def add(self, portal: Portal) -> None:
        if portal.portal_id in self._by_hub_id:
            raise ValueError(f"two portals with hub id {portal.portal_id}: give each its own seed or portal_id")
        for other in self._by_hub_id.values():
            if other.tokens.keys() & portal.tokens.keys():
                raise ValueError(f"portals {other.portal_id} and {portal.portal_id} share a token: "
                                 "give each its own seed")
        self._by_hub_id[portal.portal_id] = portal

    @property
    def primary(self) -> Portal:
        return next(iter(self._by_hub_id.values()))

    @property
    def hub_ids(self) -> list[int]:
        return list(self._by_hub_id)

    def __iter__(self) -> Iterator[Portal]:
        return iter(self._by_hub_id.values())

    def __len__(self) -> int:
        return len(self._by_hub_id)

    def by_hub_id(self, hub_id: int | str) -> Portal:
        """The portal with this hub id (portal id); KeyError naming the hub ids there are."""
        try:
            return self._by_hub_id[int(hub_id)]
        except (KeyError, ValueError):
            raise KeyError(f"no portal with hub id {hub_id!r}; this sandbox serves {self.hub_ids}") from None

    def by_token(self, token: str) -> Portal | None:
        """The portal that minted ``token`` (any kind, expired or not), or None."""
        for portal in self._by_hub_id.values():
            if token in portal.tokens:
                return portal
        return None

    def for_authorization(self, authorization: str | None) -> Portal:
        """The portal a request's Authorization header addresses: its bearer token's, else the primary."""
        if len(self._by_hub_id) == 1 or not authorization or authorization[:7].lower() != "bearer ":
            return self.primary
        return self.by_token(authorization[7:].strip()) or self.primary
