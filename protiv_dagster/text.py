"""Text that comes from outside (a vendor's error, a payload value, a stored reason), made safe to
print, log or store: it is shown as it is, and can neither forge a line nor rewrite a terminal."""

from __future__ import annotations

import unicodedata

# Controls (C0, C1, DEL), formatting characters (zero-width, bidirectional overrides), surrogates,
# line and paragraph separators: what moves a cursor, recolours a terminal, breaks a log line or
# hides text.
_TERMINAL_CONTROLS = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(text: str, *, keep_line_breaks: bool = True) -> str:
    """``text`` with every such character written as its escape, e.g. ``\\x1b[2J`` or ``\\u202e``.
    Line breaks and tabs stay in multi-line messages (``keep_line_breaks``); in a table cell or a log
    line they are escaped too, so that a row stays one row."""
    if text.isascii() and text.isprintable():  # the usual message: nothing to escape
        return text
    return "".join(
        character
        if (keep_line_breaks and character in "\n\t") or unicodedata.category(character) not in _TERMINAL_CONTROLS
        else character.encode("unicode_escape").decode("ascii")
        for character in text
    )
