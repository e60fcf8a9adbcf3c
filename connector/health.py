"""Health score (pure): weighted components, bands, trend and a one-line explanation."""
