"""The order s3db.js's filesystem client lists keys in: JS `localeCompare` (ICU root collation).

An approximation good for ASCII and Latin text, built from C-speed string operations:
compare base letters case- and accent-insensitively first (punctuation before digits before
letters, punctuation in ICU's order), then accents, then case with lower-case first.
Order is cosmetic for backup and restore; it matters only for printing records in the order
s3db.js itself would.
"""

from __future__ import annotations

import unicodedata

# ICU root order of ASCII punctuation and symbols; all sort before digits and letters.
_PUNCTUATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$"
_PRIMARY = str.maketrans({c: chr(1 + i) for i, c in enumerate(_PUNCTUATION)})


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def locale_sort_key(text: str) -> tuple[str, str, str]:
    base = text if text.isascii() else _strip_accents(text)
    primary = base.lower().translate(_PRIMARY)
    secondary = "" if base is text else unicodedata.normalize("NFD", text.lower())
    return primary, secondary, text.swapcase()  # swapcase: lower-case sorts first
