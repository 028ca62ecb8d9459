"""The classification of one statement before it is numbered and explained."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .types import Category, Risk, max_risk, worse_category


@dataclass(frozen=True)
class Verdict:
    category: Category
    risk: Risk
    kind: str
    flags: frozenset[str] = frozenset()
    tables: tuple[str, ...] = ()
    written_tables: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    copied_columns: tuple[tuple[str, str], ...] = ()
    # A sentence that says more than the category template can (set by the rule that knows).
    note: str = field(default="", compare=False)

    def worsen(self, category: Category, risk: Risk, *flags: str, note: str = "") -> Verdict:
        """This verdict, made at least as dangerous as ``category``/``risk``."""
        worse = worse_category(self.category, category)
        return replace(
            self,
            category=worse,
            risk=max_risk(self.risk, risk),
            flags=self.flags | frozenset(flags),
            note=note if note and worse != self.category else self.note,
        )

    def with_flags(self, *flags: str) -> Verdict:
        return replace(self, flags=self.flags | frozenset(flags))


def unknown(kind: str, note: str = "", *flags: str) -> Verdict:
    return Verdict(Category.UNKNOWN, Risk.HIGH, kind, frozenset(flags), note=note)
