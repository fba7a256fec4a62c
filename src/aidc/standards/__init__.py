"""The rule catalog (one module per standard family), the checker that runs it, and the report renderers."""

from __future__ import annotations

from aidc.standards.rule import Context, Finding, Outcome, Rule, builtin_rules, rule

__all__ = ["Context", "Finding", "Outcome", "Rule", "builtin_rules", "rule"]
