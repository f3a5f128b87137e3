"""The knowledge base: answers to routine questions in Chinese and English, searched while a
member types a ticket's subject. Flushes, never commits."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Invalid, NotFound
from patron.service import domain
from patron.service.models import Article

LOCALES = ("zh_CN", "en")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def search(session: Session, query: str, locale: str, *, limit: int = 5) -> list[Article]:
    """Published articles of the language, best match first. The knowledge base is small (a
    few hundred answers), so matching runs here rather than in a full-text index, and works
    the same on SQLite and PostgreSQL, Chinese included."""
    q = domain.terms(query[:200])
    if not q:
        return []
    found = []
    for a in session.scalars(
        select(Article).where(Article.locale == locale, Article.published).order_by(Article.id)
    ):
        score = domain.relevance(q, a.title, a.body, a.keywords)
        if score:
            found.append((score, a))
    found.sort(key=lambda pair: (-pair[0], pair[1].id))
    return [a for _, a in found[:limit]]


def list_articles(session: Session, locale: str | None = None) -> list[Article]:
    stmt = select(Article).order_by(Article.slug, Article.locale)
    if locale:
        stmt = stmt.where(Article.locale == locale)
    return list(session.scalars(stmt))


def get(session: Session, slug: str, locale: str) -> Article:
    found = session.scalar(select(Article).where(Article.slug == slug, Article.locale == locale))
    if found is None:
        raise NotFound("article_not_found", f"No article {slug} in {locale}.")
    return found


def save(
    session: Session,
    actor: Principal,
    *,
    slug: str,
    locale: str,
    title: str,
    body: str,
    keywords: str = "",
    published: bool = True,
    now: datetime,
) -> Article:
    """Create or replace the article of ``slug`` in ``locale``."""
    if not SLUG.match(slug):
        raise Invalid(
            "article_slug_invalid",
            "The article's short name uses lower-case letters, digits and dashes.",
        )
    if locale not in LOCALES:
        raise Invalid("article_locale_invalid", "An article is in Chinese or English.")
    if not title.strip() or not body.strip():
        raise Invalid("article_text_required", "An article needs a title and an answer.")
    row = session.scalar(
        select(Article).where(Article.slug == slug, Article.locale == locale).with_for_update()
    )
    before = None if row is None else {"title": row.title, "published": row.published}
    if row is None:
        row = Article(slug=slug, locale=locale)
        session.add(row)
    row.title = title.strip()[:200]
    row.body = body.strip()[:20_000]
    row.keywords = keywords.strip()[:300]
    row.published = published
    row.updated_by = actor.label[:120]
    row.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "service.article_save",
        "kb_article",
        f"{slug}/{locale}",
        before,
        {"title": row.title, "published": published},
        at=now,
    )
    return row
