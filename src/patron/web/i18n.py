"""Languages of the console and portal: English source strings, zh-CN from gettext catalogues.

Catalogues are plain ``.po`` files under ``web/locale/<locale>/LC_MESSAGES/``; every ``.po`` of a
locale is read at start-up and merged (each area of the UI keeps its own file), so there is no
compile step to forget.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: Final = ("zh_CN", "en")
DEFAULT_LOCALE: Final = "zh_CN"
LOCALE_LABELS: Final = {"zh_CN": "简体中文", "en": "English"}
LOCALE_DIR: Final = Path(__file__).parent / "locale"


def normalize_locale(value: str | None) -> str | None:
    """``zh-CN``, ``zh_cn``, ``zh`` → ``zh_CN``; ``en-US`` → ``en``; anything else → None."""
    if not value:
        return None
    v = value.strip().replace("-", "_").lower()
    if v.startswith("zh"):
        return "zh_CN"
    if v.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    for part in (header or "").split(","):
        found = normalize_locale(part.split(";")[0])
        if found:
            return found
    return None


@cache
def translations(locale: str) -> NullTranslations:
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    merged: Translations | None = None
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        loaded = Translations(buf)
        if merged is None:
            merged = loaded
        else:
            merged.merge(loaded)
    return merged if merged is not None else NullTranslations()


def gettext(locale: str, message: str) -> str:
    return translations(locale).gettext(message)


def N_(message: str) -> str:
    """Mark a string for extraction where it is defined; translate it where it is shown."""
    return message


# Words that reach templates as data (role names), marked here so the catalogue has them.
ROLE_LABELS: Final = (N_("Admin"), N_("Operator"), N_("Clerk"), N_("Analyst"))
