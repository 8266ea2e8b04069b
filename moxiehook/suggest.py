"""Suggestions for mistyped names: "did you mean ClientCreate?".

Every place where a user types a name that must match a known one (an event
type, an endpoint name) asks ``closest`` and puts ``did_you_mean`` in its
error, so a typo gets the same help everywhere. Stdlib only.
"""

from __future__ import annotations

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
    import difflib  # only when a name was mistyped: not at every start

    match = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    if match:
        return by_folded[match[0]]
    # A short name (crm, api) is below the cutoff after one wrong letter: one edit away, and the
    # only name that is, is the name meant.
    near = [c for f, c in by_folded.items() if len(folded) >= 2 and _one_edit_apart(folded, f)]
    return near[0] if len(near) == 1 else None


def _one_edit_apart(a: str, b: str) -> bool:
    """True when one letter changed, added, removed, or two neighbours swapped turn ``a`` into ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(differ) == 1 or (len(differ) == 2 and differ[1] == differ[0] + 1
                                    and a[differ[0]] == b[differ[1]] and a[differ[1]] == b[differ[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1:]


def did_you_mean(name: str, known: Iterable[str], quote: bool = False) -> str:
    """`` (did you mean ClientCreate?)`` to append to an error, or ``""``."""
    match = closest(name, known)
    if match is None:
        return ""
    return f" (did you mean {match!r}?)" if quote else f" (did you mean {match}?)"
