"""Alerts: rules (shipped, per site, and derived from the facility spec), the evaluator, notifiers, Prometheus export."""
