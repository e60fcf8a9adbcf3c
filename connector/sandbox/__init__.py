"""Local HubSpot-compatible portal (real HTTP on loopback) for the demo, the tests and the benchmarks."""
