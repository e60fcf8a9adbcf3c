"""Composition root: wires settings, the HubSpot client and the state store through every stage of a run."""

from __future__ import annotations

# ---------------------------------------------------------------- pull (issue 3)


# ---------------------------------------------------------------- model, metrics (issue 4)


# ---------------------------------------------------------------- health, segments (issue 5)


# ---------------------------------------------------------------- writeback, sync (issue 6)
