"""Varied payloads (``fire --vary``): seeded copies of a payload, each different, all schema-valid.

One fixed sample never shows a receiver the values that break it: a name in another script, an
empty array, a 2,000-character note, a zero amount, a date in 2038. ``varied`` walks a payload
beside its JSON Schema (``moxiehook.catalog.schema``) once, compiling a small generator for every
field, and then draws copies from it:

- every field keeps its JSON type and format (ids stay 24 hex, dates ISO-8601 with milliseconds),
  so each copy validates against the schema;
- text fields draw from pools chosen by the field's name (people's names, company names, emails,
  phones, cities, free text), mixing realistic values, non-ASCII text (accents, Greek, Cyrillic,
  CJK, right-to-left, emoji), awkward characters (quotes, backslashes, newlines, markup), long
  strings and empty strings; fields that look like codes (``INV-1042``, a postal code, a Stripe
  id) get values of the same shape; enum-like fields (a status, a type, a currency) keep Moxie's value or
  a known alternative, since an invented status is not something Moxie sends;
- numbers mix the sample's value, random amounts and boundaries (0, 2**31 - 1, 2**53 - 1);
- arrays with a known element shape get 0 to ``MAX_ELEMENTS`` elements; arrays empty in Moxie's
  sample stay empty (their element shape is unknown);
- fields null in Moxie's sample (nullable, real type unknown) stay null in most copies; where the
  name says what the value would be (a date, an id, a note, a phone) some copies get one.

Values are drawn independently: a copy's ``clientId`` need not match its ``client.id``, nor its
start come before its end. The same seed gives the same copies (``random.Random`` is stable
across Python versions). Stdlib only; loaded only when ``--vary`` is used.

Copies are mixed from ``POOL`` objects drawn up front (``_mixer``), so a copy costs a few
microseconds; what ``--vary`` costs a run is mostly its bodies being bigger than the sample.

Why not a fake-data library: Faker, measured on this machine, takes ~130 ms to import and set up
with four locales and 0.6-84 µs per value (a deliverable has about 100 fields); these pools cost nothing at
start-up and ~0.2 µs per value (docs/performance.md).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from moxiehook.catalog.payload import Assignment, PathError, apply_overrides
from moxiehook.catalog.schema import FORMATS, schema_of

__all__ = ["MAX_DRAWS", "MAX_ELEMENTS", "new_seed", "varied", "varied_copier"]

Gen = Callable[[random.Random], Any]

MAX_DRAWS = 200  # draws before a --set index that never fits is given up
FEW = 8  # values a --set path must fit before a field is varied among them only
MAX_ELEMENTS = 5
POOL = 128  # objects drawn up front, whose fields each copy mixes (see _mixer)
_LONG_SHARE = 0.004  # share of a text field's values that are a long string
_NULL_KEPT = 0.75  # share of copies in which a field null in Moxie's sample stays null

# --- pools --------------------------------------------------------------------------------------

_FIRST = ["Dana", "Maya", "Sam", "Priya", "Zoë", "José", "Łukasz", "Søren", "Aoife", "Chloé", "Ngozi",
          "Mei", "Ελένη", "Дмитрий", "美咲", "Nguyễn", "Ana-María", "Jean-Luc", "Björn", "Åsa", "محمد", "Ólafur"]
_LAST = ["Whitfield", "Okafor", "Müller", "García", "Kowalski", "O'Connor", "van der Berg", "Nakamura",
         "Ångström", "Παπαδόπουλος", "Иванова", "山田", "Đặng", "Smith-Jones", "Nuñez", "Çelik", "أحمد", "Lee"]
_FULL = [f"{first} {last}" for first, last in zip(_FIRST, _LAST, strict=False)]
_COMPANIES = ["Acme Design Co.", "Northlight Studio", "Müller & Söhne GmbH", "Café Olé", "株式会社サクラ",
              "Łódź Print Works", "São Paulo Criativo Ltda.", "Σπίτι Design", "Brand 🚀 Lab", "O'Reilly & Co.",
              "Smith, Jones & Partners", "ТОВ «Світанок»", "Zürich Ventures AG", "Ñandú Films"]
_TITLES = ["Website redesign", "Homepage wireframes", "Brand refresh", "Übersetzung der Website",
           "新しいロゴのデザイン", "Logo – round 2", "Q3 retainer", "Campaña de verano", "Café menu 🍰",
           "Kick-off: «Αθήνα» office", "Discovery call"]
_TEXT = ["Scope and timeline for the website redesign.", "Please review the attached wireframes.",
         "Zoë's notes: naïve café façade, jalapeño.", "日本語のテキスト、句読点あり。", "Ελληνικό κείμενο με τόνους.",
         "Русский текст с «кавычками».", "نص عربي من اليمين إلى اليسار", "Emoji 👩🏽‍💻🚀✨ and a flag 🇳🇿",
         "Line one\nline two\ttabbed", 'Quotes "double" and \'single\' and a back\\slash',
         "<b>markup</b> &amp; <script>alert(1)</script>", "100% of $15,000 – €12.500,00 – ¥2,000",
         "Robert'); DROP TABLE clients;--", "zero\u200bwidth and combining e\u0301"]
_AWKWARD = _TEXT[-6:]  # quotes, backslashes, newlines, markup, SQL, zero-width and combining characters
_LONG = [("Lorem ipsum dolor sit amet, ünïcödé façade naïve. " * 41)[:2000],
         ("長い文章のテスト。" * 80)[:640], "x" * 1024]
_EMAILS = ["dana@acmedesign.example.com", "maya.okafor@northlight.example.org", "zoe+billing@example.co.uk",
           "o'connor@example.ie", "José.García@example.es", "ñandú@exämple.com", "山田@例え.jp",
           "a@b.co", "very.long.address.with.many.parts+tag@sub.domain.example.com"]
_PHONES = ["+1 212 555 0142", "+44 20 7946 0958", "+49 30 901820", "+81 3-1234-5678", "(555) 010-4477",
           "+61 2 9876 5432", "555.010.9999 ext. 12"]
_CITIES = ["New York", "München", "São Paulo", "Zürich", "Kraków", "Αθήνα", "Москва", "東京", "Reykjavík",
           "Llanfairpwllgwyngyll", "Montréal"]
_REGIONS = ["NY", "CA", "Bayern", "Île-de-France", "Ontario", "NSW", "Κρήτη", "Hokkaidō"]
_ADDRESSES = ["350 Fifth Avenue", "Suite 2100", "Königstraße 12", "Rua Augusta, 1508 – 3º andar",
              "1-2-3 Shibuya, Shibuya-ku", "Flat 4B, 22 Baker St.", "ул. Тверская, д. 7", "PO Box 77"]
_COUNTRIES = ["US", "GB", "DE", "FR", "JP", "AU", "BR", "GR", "CA", "NZ", "IS"]
# Enum-like fields: Moxie's value or a known alternative, never invented text.
_ENUMS = {
    "currency": ["USD", "EUR", "GBP", "AUD", "CAD", "JPY", "CHF", "NZD", "BRL"],
    "clientType": ["Client", "Prospect"],
    "scheduledTimezone": ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "UTC",
                          "America/St_Johns", "Asia/Kolkata", "Pacific/Chatham"],
    "locale": ["en", "de", "fr", "es", "ja", "pt-BR"],
    "scheduledLocale": ["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"],
}
_ENUM_LIKE = re.compile(r"(?:[Tt]ype|[Ss]tatus|Label|Position|theme|Timing|Period|Provider|[Ll]ocale|Timezone"
                        r"|currency|Fees|Unit|^event)$")
_CODE_LIKE = re.compile(r"(?:^id|Id|Uid|ID|Number|Formatted|^postal|^taxId|UrlPath)$")
_INT_BOUNDS = [0, 1, 2**31 - 1, 2**53 - 1]
_FLOAT_BOUNDS = [0.0, 0.01, 0.5, 99999999.99]

# Text pools by field name (lower-cased suffix), first match wins.
_TEXT_POOLS: list[tuple[tuple[str, ...], list[str]]] = [
    (("email",), _EMAILS),
    (("phone", "mobile"), _PHONES),
    (("firstname", "given_name"), _FIRST),
    (("lastname", "family_name"), _LAST),
    (("fullname", "author", "updatedby", "paidby", "meetingwith", "username"), _FULL),
    (("businessname", "clientname", "accountname", "company"), _COMPANIES),
    (("name", "heading", "item", "title"), _TITLES + _COMPANIES),
    (("city",), _CITIES),
    (("locality",), _REGIONS),
    (("address1", "address2"), _ADDRESSES),
    (("country",), _COUNTRIES),
]
# Null fields whose name says they would hold text (else they stay null: an object, perhaps).
_TEXTUAL_NULLS = re.compile(
    r"(?:role|mobile|phone|notes?|memo|description|address[12]|city|postal|locality|country|website|initials"
    r"|leadSource|taxId|reason|Reason|[Nn]ame|Number|Path|Url|logo|LogoFile)$"
)
_DATE_LIKE = re.compile(r"(?:^date|Date$|At$|^timestamp|Time$|Start$|End$)")


def new_seed() -> int:
    """A fresh seed for a run that was given none (printed, so the run can be repeated)."""
    return int.from_bytes(os.urandom(4), "big")


Path = tuple[str | int, ...]


def varied(payload: Any, seed: int, assignments: Sequence[Assignment] = (),
           schema: dict[str, Any] | None = None, pool: int = POOL, reads: Sequence[Path] = ()) -> Iterator[Any]:
    """Endless varied copies of ``payload``, valid under ``schema``, with ``assignments`` set on each.

    ``schema``: the payload's schema (``catalog.schema(event)`` for a catalog sample); by default
    the one derived from ``payload`` itself, so a ``--data`` payload can be varied too.
    A ``--set`` index past the end of a varied array is met by drawing again: for an object, only
    values long enough for the index are used (drawn up front, so a run never fails half-way);
    an index no draw reaches, or any other path that does not fit, raises ``PathError`` on the
    first copy. ``pool``: how many objects are drawn up front to mix copies from; a caller that
    takes one copy (a scenario's step) asks for 1, since the pool costs more than the copy.
    ``reads``: paths that something will read in each copy (a later scenario step's reference):
    as for a ``--set`` index, a copy whose array is too short for one is not used (when no draw
    reaches the index, copies are made as without it, and the reader reports the path).
    """
    rng = random.Random(seed)
    copy = _copier(payload, rng, assignments, schema, pool, reads)
    while True:
        yield copy(rng)


def varied_copier(payload: Any, seed: int, assignments: Sequence[Assignment] = (),
                  schema: dict[str, Any] | None = None) -> Callable[[random.Random], Any]:
    """``varied``'s copies, compiled once: each call with a random source of the caller's makes one.

    Compiling (walking the schema, drawing the ``POOL`` objects from ``seed``) is most of what a
    first copy costs: about 20 ms and 400 KiB for a client. Many independent streams of copies
    (each Locust user draws its own, from its own seed) share one copier instead of each
    compiling its own. A stream's copies depend on ``seed`` and on its own random source only.
    """
    return _copier(payload, random.Random(seed), assignments, schema)


def _copier(payload: Any, rng: random.Random, assignments: Sequence[Assignment],
            schema: dict[str, Any] | None, pool: int = POOL,
            reads: Sequence[Path] = ()) -> Callable[[random.Random], Any]:
    node = schema if schema is not None else schema_of(payload)
    if isinstance(payload, dict) and node.get("type") == "object":
        mix = _mixer(_fields(payload, node, rng), rng, assignments, pool, reads)
        return lambda r: apply_overrides(mix(r), assignments)
    draw = _compile(payload, node, "", rng)
    return lambda r: _draw_with(draw, r, assignments, reads)


def _mixer(fields: list[tuple[str, Gen]], rng: random.Random, assignments: Sequence[Assignment],
           pool: int = POOL, reads: Sequence[Path] = ()) -> Gen:
    """Copies of an object made by mixing the fields of ``POOL`` objects drawn up front.

    Each field of a copy comes from a randomly chosen one of the drawn objects, and top-level
    ids are drawn fresh for each copy: the same distribution as drawing every field anew (the
    fields are drawn independently), for a dict look-up per field instead of a generator call
    per value, so ``fire --vary`` keeps the rate of ``fire``. The drawn values are shared
    between copies; nothing changes them in place (``--set`` copies what it changes). A field
    that a ``--set`` path runs through keeps only the drawn values the path fits.
    """
    members = [{name: gen(rng) for name, gen in fields} for _ in range(pool)]
    through: dict[str, list[Assignment]] = {}
    for assignment in assignments:
        through.setdefault(str(assignment.path[0]), []).append(assignment)
    read: dict[str, list[Path]] = {}
    for path in reads:
        if path and isinstance(path[0], str):
            read.setdefault(path[0], []).append(path)
    plan: list[tuple[str, Gen | None, list[Any]]] = []
    for name, gen in fields:
        if gen is _objectid:
            plan.append((name, gen, []))
            continue
        values = [member[name] for member in members]
        if name in through:
            values = _fitting(name, values, gen, through[name], rng)
        if name in read:
            values = _readable(name, values, gen, through.get(name, []), read[name], rng)
        plan.append((name, None, values))

    def draw(r: random.Random) -> dict[str, Any]:
        return {name: gen(r) if gen else values[int(r.random() * len(values))] for name, gen, values in plan}

    return draw


def _fitting(name: str, values: list[Any], gen: Gen, group: list[Assignment], rng: random.Random) -> list[Any]:
    """The ``values`` of field ``name`` that every path of ``group`` fits, drawing more if too few."""
    last: PathError | None = None

    def fits(value: Any) -> bool:
        nonlocal last
        try:
            apply_overrides({name: value}, group)
        except PathError as exc:
            if not exc.too_short:
                raise
            last = exc
            return False
        return True

    fitting = _keep_fitting(values, gen, rng, fits)
    if not fitting:
        raise _never_fits(last, group)  # type: ignore[arg-type]
    return fitting


def _readable(name: str, values: list[Any], gen: Gen, group: list[Assignment], reads: list[Path],
              rng: random.Random) -> list[Any]:
    """The ``values`` of field ``name`` in which every path of ``reads`` reaches its index (after
    ``group`` is set), drawing more if too few; all of ``values`` when no draw reaches it."""

    def fits(value: Any) -> bool:
        copy = apply_overrides({name: value}, group)
        return all(not _too_short(copy, path) for path in reads)

    return _keep_fitting(values, gen, rng, fits) or values


def _keep_fitting(values: list[Any], gen: Gen, rng: random.Random, fits: Callable[[Any], bool]) -> list[Any]:
    """The ``values`` that ``fits``, drawing more (at most ``MAX_DRAWS``) while fewer than ``FEW`` do."""
    fitting = [value for value in values if fits(value)]
    for _ in range(MAX_DRAWS):
        if len(fitting) >= FEW:
            break
        value = gen(rng)
        if fits(value):
            fitting.append(value)
    return fitting


def _too_short(payload: Any, path: Path) -> bool:
    """True when an array on ``path`` in ``payload`` is too short for its index (nothing else counts)."""
    node = payload
    for part in path:
        if isinstance(node, list):
            if isinstance(part, str) and not part.isdigit():
                return False
            if int(part) >= len(node):
                return True
            node = node[int(part)]
        elif isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        else:
            return False
    return False


def _draw_with(draw: Gen, rng: random.Random, assignments: Sequence[Assignment], reads: Sequence[Path] = ()) -> Any:
    """A copy of a payload that is not an object with the assignments set, drawn again while too short
    (for an assignment's index, or a read's: see ``varied``)."""
    if not assignments and not reads:
        return draw(rng)
    first = None
    for _ in range(MAX_DRAWS):
        try:
            copy = apply_overrides(draw(rng), assignments)
        except PathError as exc:
            if not exc.too_short:
                raise
            last = exc
            continue
        if not any(_too_short(copy, path) for path in reads):
            return copy
        first = copy if first is None else first
    if first is not None:
        return first  # no draw reaches a read's index: the reader says which
    raise _never_fits(last, assignments)


def _never_fits(last: PathError, assignments: Sequence[Assignment]) -> PathError:
    text = next(a.text for a in assignments if str(last).startswith(f"--set {a.text!r}"))
    return PathError(f"--set {text!r}: {last.where} is past the end of the array in each of {MAX_DRAWS} varied "
                     f"copies drawn (varied arrays have at most {MAX_ELEMENTS} elements)")


# --- compiling a payload into generators ----------------------------------------------------------

_FORMAT_OF_PATTERN = {pattern: name for name, (pattern, _) in FORMATS.items()}


def _compile(value: Any, node: dict[str, Any], key: str, rng: random.Random) -> Gen:
    kind = node.get("type")
    if kind is None:
        return _nullable(key, value, rng)
    if kind == "object" and isinstance(value, dict):
        fields = _fields(value, node, rng)
        return lambda r: {name: gen(r) for name, gen in fields}
    if kind == "array" and isinstance(value, list):
        if not value or "items" not in node:
            return lambda r: []
        return _array([_compile(item, node["items"], key, rng) for item in value])
    if kind == "boolean":
        return lambda r: r.random() < 0.5
    if kind == "integer":
        return _integer(value)
    if kind == "number":
        return _number(value)
    if kind == "string":
        fmt = _FORMAT_OF_PATTERN.get(node.get("pattern", ""))
        return _FORMAT_GENS[fmt] if fmt else _text(key, value, rng)
    return lambda r: value  # a schema this module does not know: keep the value as it is


def _fields(value: dict[str, Any], node: dict[str, Any], rng: random.Random) -> list[tuple[str, Gen]]:
    properties = node.get("properties", {})
    return [(name, _compile(item, properties.get(name, {}), name, rng)) for name, item in value.items()]


def _pick(pool: Sequence[Any]) -> Gen:
    size = len(pool)
    return lambda r: pool[int(r.random() * size)]


def _array(elements: list[Gen]) -> Gen:
    count = len(elements)
    # Lengths: empty, one, the sample's, and longer ones up to MAX_ELEMENTS; weighted so that a
    # varied body stays near the sample's size (bytes cost a receiver and the log more than drawing).
    lengths = [0, 0, 1, 1, 1, count, count, 2, 2, 3, MAX_ELEMENTS]
    pick_length = _pick(lengths)
    return lambda r: [elements[i % count](r) for i in range(pick_length(r))]


def _integer(sample: int) -> Gen:
    top = max(10, 3 * abs(sample))

    def gen(r: random.Random) -> int:
        roll = r.random()
        if roll < 0.3:
            return sample
        if roll < 0.45:
            return _INT_BOUNDS[int(r.random() * len(_INT_BOUNDS))]
        return int(r.random() * top)

    return gen


def _number(sample: float) -> Gen:
    top = max(100.0, 3 * abs(sample))

    def gen(r: random.Random) -> float:
        roll = r.random()
        if roll < 0.3:
            return float(sample)
        if roll < 0.45:
            return _FLOAT_BOUNDS[int(r.random() * len(_FLOAT_BOUNDS))]
        return round(r.random() * top, 2)

    return gen


def _objectid(r: random.Random) -> str:
    return f"{r.getrandbits(96):024x}"


_EPOCH_2000 = 946684800
_SPAN = 38 * 365 * 86400  # 2000 to 2037
_TIME_BOUNDS = [0, 2**31, 951782399, 1830297599]  # 1970, just past 2038-01-19, 2000-02-28 leap, 2027 end


def _seconds(r: random.Random) -> int:
    if r.random() < 0.1:
        return _TIME_BOUNDS[int(r.random() * len(_TIME_BOUNDS))]
    return _EPOCH_2000 + int(r.random() * _SPAN)


def _datetime(r: random.Random) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(_seconds(r))) + f".{int(r.random() * 1000):03d}Z"


def _date(r: random.Random) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(_seconds(r)))


def _color(r: random.Random) -> str:
    return f"#{r.getrandbits(24):06X}"


_HOSTS = ["files.example.com", "cdn.northlight.example.org", "xn--caf-dma.example", "a.b.c.example.net",
          "meet.example.com"]
_PATHS = ["", "/logo.png", "/clients/caf%C3%A9/logo.png", "/a/b/c/d/e/f/g", "/file?name=x&size=2",
          "/%E6%9D%B1%E4%BA%AC.pdf", "/" + "p" * 300]


def _uri(r: random.Random) -> str:
    host = _HOSTS[int(r.random() * len(_HOSTS))]
    path = _PATHS[int(r.random() * len(_PATHS))]
    return f"https://{host}{path}" if r.random() < 0.9 else f"http://{host}:8080{path}"


_FORMAT_GENS: dict[str, Gen] = {
    "objectid": _objectid, "date-time": _datetime, "date": _date, "color": _color, "uri": _uri,
}


def _text(key: str, sample: str, rng: random.Random) -> Gen:
    """Text for field ``key`` whose Moxie-shaped sample value is ``sample``."""
    if key in _ENUMS:
        return _pick([sample, sample, *_ENUMS[key]])
    if _ENUM_LIKE.search(key):
        return lambda r: sample
    if _CODE_LIKE.search(key) and sample:
        return _pick([sample, *(_same_shape(sample, rng) for _ in range(31))])
    folded = key.lower()
    pool = next((values for suffixes, values in _TEXT_POOLS if folded.endswith(suffixes)), _TEXT)
    # About 1 in 5: the sample's value; then the pool, awkward text and an empty string; and now and
    # then a long string (a copy has ~20 text fields, so about one copy in ten carries one).
    odd = [*_AWKWARD, ""]
    pick = _pick([sample] * ((len(pool) + len(odd)) // 4) + pool + odd)
    long = _LONG[int(rng.random() * len(_LONG))]
    return lambda r: long if r.random() < _LONG_SHARE else pick(r)


def _same_shape(sample: str, rng: random.Random) -> str:
    """A value shaped like ``sample``: digits for digits, letters for letters (same case), hex for hex."""
    hexish = any(c in "abcdef" for c in sample) and all(c in "0123456789abcdef-" for c in sample)
    out = []
    for c in sample:
        if hexish and c != "-":
            out.append("0123456789abcdef"[rng.getrandbits(4)])
        elif c.isdigit():
            out.append(str(int(rng.random() * 10)))
        elif c.isascii() and c.isalpha():
            letter = chr(ord("a") + int(rng.random() * 26))
            out.append(letter.upper() if c.isupper() else letter)
        else:
            out.append(c)
    return "".join(out)


def _nullable(key: str, sample: Any, rng: random.Random) -> Gen:
    """A field null in Moxie's sample: null in most copies, else a value its name suggests (if any)."""
    if _DATE_LIKE.search(key):
        other: Gen | None = _datetime
    elif key.endswith("Id"):
        other = _objectid
    elif _TEXTUAL_NULLS.search(key):
        other = _text(key, "", rng)
    else:
        other = None
    if sample is not None or other is None:
        return lambda r: sample
    return lambda r: None if r.random() < _NULL_KEPT else other(r)
