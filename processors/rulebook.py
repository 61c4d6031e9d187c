"""The tenants' current rule sets, as the worker sees them: the newest version per tenant wins.

Fed with RuleSet records (from the compacted rules topic); a tenant without rules gets
``DEFAULT_RULES``. Pure: no Kafka here, the worker's rules task feeds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from processors.rules.model import DEFAULT_RULES, RuleError, RuleSetDef, from_record


class Rulebook:
    """Latest RuleSetDef per tenant."""

    def __init__(self, default: RuleSetDef = DEFAULT_RULES) -> None:
        self._default = default
        self._by_cid: dict[int, RuleSetDef] = {}

    def apply(self, record: Mapping[str, Any]) -> RuleSetDef | None:
        """Take a RuleSet record; returns the rules now in force for its tenant, or None if it was older.

        Raises ``RuleError`` (naming the rule) for an invalid rule set; the previous rules stay in force.
        """
        rules = from_record(record)
        current = self._by_cid.get(rules.cid)
        if current is not None and current.version >= rules.version:
            return None
        self._by_cid[rules.cid] = rules
        return rules

    def for_tenant(self, cid: int) -> RuleSetDef:
        """The rules in force for ``cid`` (the defaults, tagged with the tenant, when it has none)."""
        rules = self._by_cid.get(cid)
        return rules if rules is not None else replace(self._default, cid=cid)

    @property
    def tenants(self) -> list[int]:
        return sorted(self._by_cid)


__all__ = ["RuleError", "Rulebook"]
