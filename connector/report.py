"""Terminal and HTML report of a run."""
