"""The analytics models' messages (degenerate fits, missing history) in the viewer's language.

The models report in English sentences with figures in them, stored as such in each run's
report (and printed by the commands). The console matches each sentence against the known
shapes and shows the catalogue's translation with the same figures; a sentence of an unknown
shape is shown as it is."""

from __future__ import annotations

import re
from typing import Final

from patron.web import i18n
from patron.web.i18n import N_

#: (English shape, message id with the same named figures)
SHAPES: Final[tuple[tuple[str, str], ...]] = (
    (r"no member has bought anything yet", N_("No member has bought anything yet.")),
    (
        r"no member bought anything on or before (?P<day>\S+): the evaluation needs history "
        r"older than the (?P<n>\d+)-day holdout",
        N_(
            "No member bought anything on or before %(day)s: the evaluation needs history "
            "older than the %(n)s-day holdout."
        ),
    ),
    (
        r"the likelihood could not be evaluated at any tried parameters",
        N_("The likelihood could not be evaluated at any parameters tried."),
    ),
    (
        r"the optimiser stopped where the likelihood still slopes \((?P<slope>[^)]*)\): it did "
        r"not converge",
        N_(
            "The optimiser stopped where the likelihood still slopes (%(slope)s): it did not "
            "converge."
        ),
    ),
    (
        r"the optimiser did not converge \((?P<why>.*)\)",
        N_("The optimiser did not converge (%(why)s)."),
    ),
    (
        r"parameter (?P<name>\S+) ran to the upper bound of the search \((?P<value>[^)]*)\): "
        r"the data do not determine it",
        N_(
            "Parameter %(name)s ran to the upper bound of the search (%(value)s): the data do "
            "not determine it."
        ),
    ),
    (
        r"parameter (?P<name>\S+) ran to the lower bound of the search \((?P<value>[^)]*)\): "
        r"the data do not determine it",
        N_(
            "Parameter %(name)s ran to the lower bound of the search (%(value)s): the data do "
            "not determine it."
        ),
    ),
    (
        r"only (?P<k>\d+) of (?P<n>\d+) customers bought more than once; at least (?P<min>\d+) "
        r"repeat buyers are needed to fit the model",
        N_(
            "Only %(k)s of %(n)s customers bought more than once; at least %(min)s repeat "
            "buyers are needed to fit the model."
        ),
    ),
    (
        r"the data show no dropout \(a customer leaves after a purchase with probability "
        r"(?P<p>[^)]*)\): P\(alive\) would be 1 for everyone",
        N_(
            "The data show no dropout (a customer leaves after a purchase with probability "
            "%(p)s): the chance of being still active would be 1 for everyone."
        ),
    ),
    (
        r"the data show no dropout \(mean dropout rate (?P<rate>\S+) per unit of time\): "
        r"P\(alive\) would be 1 for everyone",
        N_(
            "The data show no dropout (mean dropout rate %(rate)s per day): the chance of "
            "being still active would be 1 for everyone."
        ),
    ),
    (
        r"only (?P<k>\d+) customers have a repeat purchase with a positive amount; at least "
        r"(?P<min>\d+) are needed to fit the spend model",
        N_(
            "Only %(k)s customers have a repeat purchase with a positive amount; at least "
            "%(min)s are needed to fit the spend model."
        ),
    ),
    (
        r"q = (?P<q>\S+) ≤ 1: the spend distribution has no finite mean, so expected spend is "
        r"undefined",
        N_(
            "q = %(q)s ≤ 1: the spend distribution has no finite mean, so expected spend is "
            "undefined."
        ),
    ),
    (
        r"spend per purchase is correlated with the number of purchases \((?P<corr>[^)]*)\); "
        r"the spend model assumes they are independent",
        N_(
            "Spend per purchase is correlated with the number of purchases (%(corr)s); the "
            "spend model assumes they are independent."
        ),
    ),
    (
        r"the training set has (?P<n>\d+) members; at least (?P<min>\d+) are needed",
        N_("The training set has %(n)s members; at least %(min)s are needed."),
    ),
    (
        r"the holdout has (?P<n>\d+) members; at least (?P<min>\d+) are needed",
        N_("The holdout has %(n)s members; at least %(min)s are needed."),
    ),
    (
        r"every member of the training set churned: there is nothing to tell apart",
        N_("Every member of the training set churned: there is nothing to tell apart."),
    ),
    (
        r"every member of the training set bought again: there is nothing to tell apart",
        N_("Every member of the training set bought again: there is nothing to tell apart."),
    ),
    (
        r"every member of the holdout churned: there is nothing to tell apart",
        N_("Every member of the holdout churned: there is nothing to tell apart."),
    ),
    (
        r"every member of the holdout bought again: there is nothing to tell apart",
        N_("Every member of the holdout bought again: there is nothing to tell apart."),
    ),
    (
        r"no member with purchases before (?P<day>\S+) bought a product new to them after it, "
        r"so there is nothing to judge them on",
        N_(
            "No member with purchases before %(day)s bought a product new to them after it, so "
            "there is nothing to judge the recommendations on."
        ),
    ),
)
#: What a line of the evaluation may start with: the model it is about.
PREFIXES: Final = {
    "BG/NBD": "BG/NBD",
    "Pareto/NBD": "Pareto/NBD",
    "Gamma-Gamma": "Gamma-Gamma",
    "churn model": N_("Churn model"),
    "recommendations": N_("Recommendations"),
}
_COMPILED = tuple((re.compile(pattern), message) for pattern, message in SHAPES)


def _sentence(locale: str, text: str) -> str | None:
    for pattern, message in _COMPILED:
        found = pattern.fullmatch(text)
        if found:
            return i18n.gettext(locale, message) % found.groupdict()
    return None


def translate(locale: str, line: str) -> str:
    """The model's sentence in ``locale``; an unknown shape comes back unchanged."""
    whole = _sentence(locale, line)
    if whole is not None:
        return whole
    head, sep, rest = line.partition(": ")
    if sep and head in PREFIXES:
        inner = _sentence(locale, rest)
        if inner is not None:
            return i18n.gettext(locale, N_("%(model)s: %(problem)s")) % {
                "model": i18n.gettext(locale, PREFIXES[head]),
                "problem": inner,
            }
    return line
