"""Suggestions for mistyped names: "did you mean ClientCreate?".

Every place where a user types a name that must match a known one (an event
type, an endpoint name) asks ``closest`` and puts ``did_you_mean`` in its
error, so a typo gets the same help everywhere. Stdlib only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.75  # difflib ratio below which two names are not worth suggesting


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely meant, or None.

    A case slip (``clientcreate``) always finds its name; otherwise the
    closest name by ``difflib`` similarity (on lower-cased text) above ``CUTOFF``.
    An exact match is not a suggestion.
    """
    candidates = list(known)
    if name in candidates:
        return None
    folded = name.casefold()
    for candidate in candidates:
        if candidate.casefold() == folded:
            return candidate
    by_folded = {c.casefold(): c for c in candidates}
    match = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[match[0]] if match else None


def did_you_mean(name: str, known: Iterable[str], quote: bool = False) -> str:
    """`` (did you mean ClientCreate?)`` to append to an error, or ``""``."""
    match = closest(name, known)
    if match is None:
        return ""
    return f" (did you mean {match!r}?)" if quote else f" (did you mean {match}?)"
