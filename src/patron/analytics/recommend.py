"""Recommendations: item-to-item co-occurrence on SciPy sparse matrices, with a popularity
fallback. Pure numerical code (no I/O); docs/analytics.md, "Recommendations".

A member × item matrix X holds 1 where the member bought the item (or used the coupon). Item
similarity is the cosine of the co-occurrence counts, S = XᵀX ÷ √(nᵢ nⱼ) with the diagonal
cleared; a member's score for an item is the sum of its similarities to what the member has,
and the top ``k`` items the member has not had yet are recommended. Members whose items have
no co-occurring neighbours (and new members) get the most popular items they have not had.
Scores are computed for a block of members at a time, so memory stays at block × items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

Ints = NDArray[np.int64]
Array = NDArray[np.float64]

K = 10
#: Dense scores computed at once: members per block × items stays under this.
BLOCK_CELLS = 4_000_000


def matrix(member: Any, item: Any, members: int, items: int) -> sparse.csr_matrix:
    """Binary member × item matrix from (member index, item index) pairs."""
    m = np.asarray(member, dtype=np.int64)
    i = np.asarray(item, dtype=np.int64)
    x = sparse.csr_matrix((np.ones(m.size), (m, i)), shape=(members, items))
    x.data[:] = 1.0  # duplicates were summed
    return x


def similarity(x: sparse.csr_matrix) -> sparse.csr_matrix:
    """Item × item cosine of co-occurrence, diagonal cleared."""
    co = (x.T @ x).tocsr()
    counts = np.asarray(x.sum(axis=0)).ravel()
    norm = np.sqrt(np.maximum(counts, 1.0))
    inv = sparse.diags(1.0 / norm)
    s = (inv @ co @ inv).tocsr()
    s.setdiag(0.0)
    s.eliminate_zeros()
    return s


def popularity(x: sparse.csr_matrix) -> Array:
    """Members who had each item."""
    out: Array = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    return out


@dataclass(frozen=True)
class Top:
    """Per member (row of X) its top items (indices, −1 = none) and their scores."""

    items: Ints  # members × k
    scores: Array  # members × k
    fallback: NDArray[np.bool_]  # rows filled from popularity


def _top_k(scores: Array, k: int) -> tuple[Ints, Array]:
    kk = min(k, scores.shape[1])
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    idx = np.where(np.isfinite(vals) & (vals > 0), idx, -1)
    if kk < k:
        pad = ((0, 0), (0, k - kk))
        idx = np.pad(idx, pad, constant_values=-1)
        vals = np.pad(vals, pad, constant_values=0.0)
    return idx.astype(np.int64), np.where(idx >= 0, vals, 0.0)


def recommend(
    x: sparse.csr_matrix,
    *,
    k: int = K,
    use_similarity: bool = True,
    allowed: NDArray[np.bool_] | None = None,
    rows: Ints | None = None,
) -> Top:
    """Top ``k`` new items per member (or per member of ``rows``: similarity and popularity
    still learn from every row); ``use_similarity`` False gives popularity alone (the
    baseline). ``allowed`` masks items that may be recommended (e.g. active coupons)."""
    _, items = x.shape
    target = x if rows is None else x[rows]
    n = target.shape[0]
    if items == 0:
        return Top(np.full((n, k), -1), np.zeros((n, k)), np.ones(n, dtype=bool))
    pop = popularity(x)
    # Popularity scores below any co-occurrence score: a fallback, not a competitor.
    pop_score = pop / (pop.max() + 1.0) * 1e-6
    sim = similarity(x) if use_similarity else None
    mask = np.ones(items, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    out_i = np.full((n, k), -1, dtype=np.int64)
    out_s = np.zeros((n, k))
    fallback = np.zeros(n, dtype=bool)
    block = max(1, BLOCK_CELLS // items)
    for lo in range(0, n, block):
        part = target[lo : lo + block]
        hi = lo + part.shape[0]
        if sim is not None:
            dense = np.asarray((part @ sim).todense(), dtype=np.float64)
        else:
            dense = np.zeros((part.shape[0], items))
        fallback[lo:hi] = ~(dense[:, mask] > 0).any(axis=1)
        dense += np.where(pop > 0, pop_score, 0.0)
        dense[:, ~mask] = -np.inf
        r, c = part.nonzero()
        dense[r, c] = -np.inf  # already had
        out_i[lo:hi], out_s[lo:hi] = _top_k(dense, k)
    return Top(out_i, out_s, fallback)


@dataclass(frozen=True)
class RankingCheck:
    """Precision and recall at k on a time split: items first had after the cut, per member
    who had history before it and at least one such new item."""

    members: int
    items: int
    precision: float
    recall: float
    baseline_precision: float
    baseline_recall: float

    @property
    def beats_baseline(self) -> bool:
        return self.precision > self.baseline_precision

    def as_json(self) -> dict[str, Any]:
        return {**vars(self), "beats_baseline": self.beats_baseline}


def _hits(top: Ints, truth: sparse.csr_matrix) -> tuple[Array, Array]:
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    cols = top.ravel()
    ok = cols >= 0
    got = np.zeros(rows.size)
    got[ok] = np.asarray(truth[rows[ok], cols[ok]]).ravel()
    hits = got.reshape(top.shape).sum(axis=1)
    relevant = np.asarray(truth.sum(axis=1)).ravel()
    return hits, relevant


def evaluate(
    member: Any, item: Any, day: Any, *, cut: int, items: int, k: int = K
) -> RankingCheck | None:
    """Train on (member, item) pairs up to ``cut``, judge on items first had after it."""
    member = np.asarray(member, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    before = day <= cut
    ids, who = np.unique(member, return_inverse=True)
    n = ids.size
    train = matrix(who[before], item[before], n, items)
    after = matrix(who[~before], item[~before], n, items)
    new = after - after.multiply(train)  # only items not had before the cut
    new.eliminate_zeros()
    had = np.asarray(train.sum(axis=1)).ravel() > 0
    judged = had & (np.asarray(new.sum(axis=1)).ravel() > 0)
    if not judged.any():
        return None
    rows = np.flatnonzero(judged)
    truth = new[rows]
    # Similarity and popularity learn from every member's history before the cut.
    model = recommend(train, k=k, rows=rows)
    base = recommend(train, k=k, use_similarity=False, rows=rows)
    m_hits, rel = _hits(model.items, truth)
    b_hits, _ = _hits(base.items, truth)
    return RankingCheck(
        members=int(rows.size),
        items=items,
        precision=float((m_hits / k).mean()),
        recall=float((m_hits / rel).mean()),
        baseline_precision=float((b_hits / k).mean()),
        baseline_recall=float((b_hits / rel).mean()),
    )
