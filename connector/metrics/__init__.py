"""Pure retention metrics: periods, customer and revenue retention, value and BTYD, surveys, engagement, features.

Nothing here does I/O, reads settings or asks the clock: periods, ``as_of`` and options come in as arguments.
Entry points: ``portfolio.portfolio_metrics`` (period figures) and ``features.customer_features`` (per customer).
"""
