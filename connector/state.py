"""State store (SQLAlchemy Core): records, associations, cursors, runs, snapshots, ledger, enrollments."""
