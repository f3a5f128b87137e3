"""Sortable console lists: which column a list is sorted by, read from its address, and the
links of its column headers (clicked: sorted by that column; clicked again: the other way).
The sort travels in the address (``sort`` and ``dir``, left out when they are the list's
default), so the pager, a reload and the list's download keep it. The service sorts; ties are
broken there by the row's id so that pages never overlap."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass(frozen=True, slots=True)
class Sorting:
    """A list's sortable columns: ``columns`` maps each to whether it starts descending
    (newest first, most urgent first); ``default`` is the order with no ``sort`` given."""

    url: str
    columns: dict[str, bool]
    default: str

    def read(self, sort: str, direction: str) -> tuple[str, bool]:
        """The column and direction an address asks for; an unknown column is the default,
        an unknown direction the column's own."""
        sort = sort if sort in self.columns else self.default
        if direction in ("asc", "desc"):
            return sort, direction == "desc"
        return sort, self.columns[sort]

    def params(self, sort: str, descending: bool) -> dict[str, str]:
        """Address parameters of a sort, each left out when it is the default."""
        params = {} if sort == self.default else {"sort": sort}
        if descending != self.columns[sort]:
            params["dir"] = "desc" if descending else "asc"
        return params

    def links(
        self, filters: dict[str, str], sort: str, descending: bool
    ) -> dict[str, dict[str, str]]:
        """Per column: the address that sorts by it (the current column: the other way) with
        the list's filters, and its ``aria-sort``."""
        out = {}
        for column, starts_descending in self.columns.items():
            current = sort == column
            desc = (not descending) if current else starts_descending
            params = {**filters, **self.params(column, desc)}
            out[column] = {
                "href": self.url + ("?" + urlencode(params) if params else ""),
                "aria": ("descending" if descending else "ascending") if current else "none",
            }
        return out
