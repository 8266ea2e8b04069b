"""One delivery: the request an endpoint gets, how an answer is judged, sending with retries.

Everything that is the same for all deliveries to an endpoint (headers with
``${VAR}`` expanded, the redacted copy for the log, the signing key, timeout,
TLS setting) is computed once per run in ``prepare_endpoint``. ``send`` then
does only per-delivery work: sign, POST, read at most 64 KiB, decide with
``classify`` (the one place that decides an answer's fate: 2xx delivered; a ``disable_on`` status
disables the endpoint; 408, 425, 429, 5xx and network errors are retried; any other answer fails), retry, and return
a ``DeliveryRecord``.

The wire format lives here and only here: ``prepare_endpoint`` and
``request_headers`` build every request moxiehook sends (fire, test, replay,
load runs, ``--app``, the pytest fixture). How the bytes travel is a
``Sender``: ``WireSender`` over the network (moxiehook's own HTTP/1.1 client,
``moxiehook.http``), or ``HttpxSender`` over an httpx client whose transport calls a
WSGI/ASGI app in-process.
"""

from __future__ import annotations

import base64
import enum
import random
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from moxiehook import __version__, ids
from moxiehook.config import (
    MASK,
    Endpoint,
    Settings,
    check_signing_secret,
    expand,
    expand_checked,
    has_reference,
    references,
    resolve_relative,
)
from moxiehook.errors import ConfigError
from moxiehook.http import AttemptTimeout, Connections, Proxies, TransportError
from moxiehook.http import tls_context as tls_context  # re-exported by moxiehook.send (the pytest fixture uses it)
from moxiehook.ids import now_iso
from moxiehook.log import LOGGED_BODY_LIMIT, Attempt, DeliveryRecord, encode_body, raw_fields
from moxiehook.send import signing

if TYPE_CHECKING:  # imported by the senders that use them: a network run loads neither
    import ssl

    import httpx

USER_AGENT = f"moxiehook/{__version__}"
READ_LIMIT = 64 * 1024  # response bytes read at most (4 KiB of them are kept in the log)
MAX_BACKOFF = 30.0  # seconds
MAX_RETRY_AFTER = 60.0  # seconds
JITTER = 0.2  # ±20 %
RETRY_STATUSES = frozenset({408, 425, 429})
METHOD = "POST"
MIN_REDACTED = 4  # shortest secret value masked in logged responses
INTERRUPTED = "interrupted (Ctrl-C)"  # the error of a delivery a Ctrl-C cut short


class Verdict(enum.Enum):
    """What an answer means for the delivery and its endpoint: delivered, retried, failed, or disabling."""

    DELIVERED = "delivered"
    RETRY = "retry"  # retried until max_attempts, then failed; endpoint stays enabled
    FAIL = "fail"  # failed at once; endpoint stays enabled
    DISABLE = "disable"  # failed at once; endpoint disabled


def classify(status: int | None, disable_on: Collection[int]) -> Verdict:
    """The fate of an answer; ``None`` means no answer (connection error or timeout)."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status <= 299:
        return Verdict.DELIVERED
    if status in disable_on:
        return Verdict.DISABLE
    # A status past 599 is no HTTP status (a proxy's or a library's own code leaking out): a
    # client processes it as a 5xx (RFC 9110 §15), so it is retried like one.
    if status in RETRY_STATUSES or status >= 500:
        return Verdict.RETRY
    return Verdict.FAIL


def status_text(status: int) -> str:
    """``401 Unauthorized``; just the number for a code without a standard phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def backoff_delay(base: float, retry_number: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before retry ``retry_number`` (1 = the 2nd attempt): doubling, ±20 %, ≤ 30 s."""
    delay = base * (2 ** (retry_number - 1))
    jittered = delay * (1 - JITTER + 2 * JITTER * rng())
    return float(min(jittered, MAX_BACKOFF))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds to wait (delta-seconds or an HTTP date), at most 60 s."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit(), not to float()
        seconds = float(value)
    else:
        from email.utils import parsedate_to_datetime  # rarely needed: not loaded by every run

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):  # not a date (Python 3.10+ raises rather than return None)
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


# ---------------------------------------------------------------------------
# per endpoint, once per run


@dataclass(frozen=True)
class PreparedEndpoint:
    """An endpoint ready to send: wire headers, log headers, key, timeout, TLS."""

    name: str
    headers: dict[str, str]  # sent (secrets expanded), without X-Event-Type
    logged_headers: dict[str, str]  # the same with secrets as ***
    signing_key: bytes | None
    timeout: float
    verify: bool | str  # True, False, or the absolute path of a CA bundle
    # Expanded secret values: a receiver echoing the request (httpbin-style)
    # must not carry them into the logged response.
    secrets: tuple[str, ...] = ()
    _encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)  # log_headers_json

    def wire_headers(self, event: str) -> dict[str, str]:
        return {**self.headers, "X-Event-Type": event}

    def log_headers(self, event: str) -> dict[str, str]:
        return {**self.logged_headers, "X-Event-Type": event}

    def log_headers_json(self, event: str) -> bytes:
        """``log_headers(event)`` as JSON, encoded once per event (the log line splices it in)."""
        encoded = self._encoded.get(event)
        if encoded is None:
            encoded = self._encoded[event] = encode_body(self.log_headers(event))
        return encoded


def prepare_endpoint(endpoint: Endpoint, settings: Settings, config_path: Path | None) -> PreparedEndpoint:
    """Expand the endpoint's ``${VAR}`` references and build its headers.

    Raises ``MissingVariableError`` naming the first unset variable. Without
    ``config_path`` (a dry run) a CA bundle path is neither resolved nor checked.
    """
    where = f"endpoints.{endpoint.name}"
    headers = _base_headers(settings)
    secrets: list[str] = []
    auth = endpoint.auth
    values = {key: expand_checked(value, f"{where}.auth.{key}", auth.type, key)
              for key, value in auth.values().items() if key != "header"}
    if auth.type == "basic":
        user, password = values["username"], values["password"]
        secrets.append(password)  # the Authorization value is base64: a receiver may echo the password itself
        set_header(headers, "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    elif auth.type == "bearer":
        set_header(headers, "Authorization", "Bearer " + values["token"])
    elif auth.type == "custom":
        set_header(headers, auth.header or "", values["value"])
    for name, value in endpoint.headers.items():
        set_header(headers, name, expand_checked(value, f"{where}.headers.{name}"))
    key = None
    if endpoint.signing_secret:
        secret = expand(endpoint.signing_secret, f"{where}.signing_secret")
        if has_reference(endpoint.signing_secret):
            _recheck(references(endpoint.signing_secret), check_signing_secret, secret, f"{where}.signing_secret",
                     reference_ok=False)
        key = signing.secret_bytes(secret)
        secrets.append(secret)
    logged = redacted_headers(endpoint, settings)
    for name, value in headers.items():
        if logged.get(name) == MASK:
            # The whole value, and its parts: "Bearer <token>" may be echoed as the token alone.
            secrets += [value, *value.split()]
    return PreparedEndpoint(
        name=endpoint.name,
        headers=headers,
        logged_headers=logged,
        signing_key=key,
        timeout=endpoint.timeout if endpoint.timeout is not None else settings.timeout,
        verify=_verify_setting(endpoint, settings, config_path),
        # Longest first, so a whole value is masked before a part of it; tiny
        # values are left alone (masking "ab" everywhere would garble the body).
        secrets=tuple(sorted({v for v in secrets if len(v) >= MIN_REDACTED}, key=len, reverse=True)),
    )


def _recheck(names: list[str], check: Callable[..., str], *args: Any, **kwargs: Any) -> None:
    """Run a config check on an expanded value; its error names the variables the value came from."""
    try:
        check(*args, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from environment variable {', '.join(names)}; nothing was sent)") from None


def redact_text(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _redacted_response(response: dict[str, Any] | None, secrets: tuple[str, ...]) -> dict[str, Any] | None:
    if response is None or not secrets:
        return response
    return {
        **response,
        "headers": {name: redact_text(value, secrets) for name, value in response["headers"].items()},
        "body": redact_text(response["body"], secrets),
    }


def _base_headers(settings: Settings) -> dict[str, str]:
    # X-Event-Type is filled per delivery; the empty slot keeps the wire order of Moxie's headers.
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-Event-Origin": settings.origin, "X-Event-Type": ""}


def redacted_headers(endpoint: Endpoint, settings: Settings) -> dict[str, str]:
    """The endpoint's headers as the log and dry runs show them (no X-Event-Type).

    The auth header's value is always ``***``; a custom header is ``***`` when
    its value comes from ``${…}`` (it may be a credential). Needs no variable set.
    """
    headers = _base_headers(settings)
    auth = endpoint.auth
    if auth.type in ("basic", "bearer"):
        set_header(headers, "Authorization", MASK)
    elif auth.type == "custom":
        set_header(headers, auth.header or "", MASK)
    for name, value in endpoint.headers.items():
        set_header(headers, name, MASK if has_reference(value) else value)
    return headers


def set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set ``name``, replacing a header already there under the same name in any case.

    Header names are case-insensitive (RFC 9110 §5.1): a config's ``user-agent`` replaces
    moxiehook's ``User-Agent`` instead of going out beside it as a second one (which a receiver
    reading the first would never see, and which Locust's client would fold into one).
    """
    lowered = name.lower()
    for key in [key for key in headers if key.lower() == lowered and key != name]:
        del headers[key]
    headers[name] = value


def _verify_setting(endpoint: Endpoint, settings: Settings, config_path: Path | None) -> bool | str:
    verify = endpoint.verify_tls if endpoint.verify_tls is not None else settings.verify_tls
    return verify_setting(verify, config_path, f"verify_tls of endpoint {endpoint.name!r}")


def verify_setting(verify: bool | str, config_path: Path | None, owner: str) -> bool | str:
    """A ``verify_tls`` value ready to use: a CA bundle's path is taken beside the config and loaded now.

    Every command that sends (``fire``, ``test``, ``replay``, ``listen --forward-to``) reads a
    relative bundle from the config's folder, never the working one, and a bundle that is missing
    or holds no certificate stops it before anything is sent, in one line naming ``owner``.
    """
    if isinstance(verify, str) and config_path is not None:
        bundle = resolve_relative(config_path, verify)
        if not bundle.is_file():
            raise ConfigError(f"{owner}: no CA bundle at {bundle}")
        try:  # loaded now, before anything is sent: a wrong file stops the run in one line
            tls_context(str(bundle))
        except ConfigError as exc:
            raise ConfigError(f"{owner}: {exc}") from None
        return str(bundle)
    return verify


# ---------------------------------------------------------------------------
# one delivery


@dataclass(frozen=True)
class Delivery:
    """What ``send`` needs for one delivery besides the endpoint."""

    event: str
    url: str
    body: Any
    body_bytes: bytes
    event_id: str
    mode: str = "fire"
    replay_of: str | None = None
    scenario: dict[str, Any] | None = None  # a scenario step's {"name", "run", "step"}, logged with it
    # The body is raw bytes (``body_bytes``; ``body`` the text typed or the bytes replayed), not a JSON
    # value: a replay of a relayed body that was not JSON, or an edit that typed text.
    text: bool = False
    # Content-Type sent in place of the endpoint's (a text body replayed with the one it came with).
    content_type: str | None = None

    def logged_request(self, headers: dict[str, str]) -> dict[str, Any]:
        """The ``request`` part of the delivery's record: the logged headers and the body."""
        if self.content_type is not None:
            headers = _with_content_type(headers, self.content_type)
        if self.text:
            return {"headers": headers, **raw_fields(self.body_bytes)}  # logged as text, or base64
        return {"headers": headers, "body": self.body}


def _with_content_type(headers: dict[str, str], content_type: str) -> dict[str, str]:
    """``headers`` with ``Content-Type`` replaced (whatever its case), in its place."""
    found = [name for name in headers if name.lower() == "content-type"]
    if not found:
        return {**headers, "Content-Type": content_type}
    return {name: (content_type if name == found[0] else value) for name, value in headers.items()
            if name == found[0] or name.lower() != "content-type"}


@dataclass
class Answer:
    """One attempt's answer, as ``classify`` and the log need it."""

    status: int | None  # None: no answer (connection error or timeout)
    error: str | None
    response: dict[str, Any] | None  # {"status", "headers", "body" (first 4 KiB as text)}
    retry_after: float | None = None


class Sender(Protocol):
    """Carries one request and reports the answer; never raises for a network problem."""

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer: ...


def request_headers(endpoint: PreparedEndpoint, delivery: Delivery) -> tuple[dict[str, str], dict[str, str]]:
    """The headers of one attempt, and the signature headers among them (logged as sent).

    Signed endpoints get the same ``webhook-id`` on every attempt, and a fresh
    timestamp and signature each time, so call this once per attempt.
    """
    headers = endpoint.wire_headers(delivery.event)
    if delivery.content_type is not None:
        headers = _with_content_type(headers, delivery.content_type)
    signature: dict[str, str] = {}
    if endpoint.signing_key is not None:
        signature = signing.signature_headers(endpoint.signing_key, delivery.event_id, delivery.body_bytes)
        headers.update(signature)
    return headers, signature


def shown_headers(endpoint: PreparedEndpoint, delivery: Delivery, signature: dict[str, str]) -> dict[str, str]:
    """The headers as the log and ``--dry-run`` show them: secrets as ``***``, signatures as sent."""
    return {**endpoint.log_headers(delivery.event), **signature}


def send(
    sender: Sender,
    endpoint: PreparedEndpoint,
    delivery: Delivery,
    settings: Settings,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> tuple[DeliveryRecord, Verdict]:
    """Deliver once, retrying a retryable answer up to ``settings.max_attempts`` times.

    Returns the record (not yet logged) and the verdict of the last answer.
    Once ``stop`` is set (Ctrl-C), no further attempt starts: a wait before a
    retry ends at once, and an attempt that the run cut ends as interrupted.
    """
    started_at = attempt_at = now_iso()
    started = attempt_start = time.perf_counter()
    attempts: list[Attempt] = []
    interrupted = False
    for number in range(1, settings.max_attempts + 1):
        if number > 1:
            attempt_at, attempt_start = now_iso(), time.perf_counter()
        headers, signature = request_headers(endpoint, delivery)
        answer = sender.post(delivery.url, headers, delivery.body_bytes, endpoint.timeout)
        if answer.status is None and stop is not None and stop.is_set():
            answer = Answer(None, INTERRUPTED, None)  # cut by the run, not the receiver's doing
        attempts.append(Attempt(attempt_at, answer.status, answer.error, _ms_since(attempt_start)))
        verdict = classify(answer.status, settings.disable_on)
        if verdict is not Verdict.RETRY or number == settings.max_attempts:
            break
        wait = answer.retry_after if answer.retry_after is not None else backoff_delay(settings.backoff, number)
        if stop is None:
            sleep(wait)
        elif stop.is_set() or stop.wait(wait):
            interrupted = answer.error != INTERRUPTED
            break
    delivered = verdict is Verdict.DELIVERED
    error = None if delivered else answer.error
    if error and len(attempts) > 1:
        error = f"{error} (after {len(attempts)} attempts)"
    if error and interrupted:
        error = f"{error}; {INTERRUPTED} before the next attempt"
    record = DeliveryRecord(
        id=ids.delivery_id(),
        event_id=delivery.event_id,
        event=delivery.event,
        endpoint=endpoint.name,
        url=delivery.url,
        mode=delivery.mode,
        replay_of=delivery.replay_of,
        at=started_at,
        outcome="delivered" if delivered else "failed",
        status=answer.status,
        error=redact_text(error, endpoint.secrets) if error else error,
        duration_ms=_ms_since(started),
        attempts=attempts,
        request=delivery.logged_request(shown_headers(endpoint, delivery, signature)),
        response=_redacted_response(answer.response, endpoint.secrets),
        scenario=delivery.scenario,
    )
    return record, verdict


def _ms_since(start: float) -> float:
    """Milliseconds since ``start`` (``perf_counter``), to 0.1 ms.

    ``round(ms * 10) / 10`` gives what ``round(ms, 1)`` gives (but for exact
    ties) several times faster; two of these per delivery.
    """
    return round((time.perf_counter() - start) * 10_000) / 10


class WireSender:
    """A ``Sender`` over the network: moxiehook's own HTTP/1.1 client (see ``moxiehook.http``).

    One per sending thread (its keep-alive connections are not shared); made
    with the TLS context of the endpoints it sends to and the run's proxies.
    """

    def __init__(self, tls: ssl.SSLContext | None, proxies: Proxies | None = None) -> None:
        self.connections = Connections(
            tls, proxies if proxies is not None else Proxies.from_environ())

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
        try:
            response = self.connections.post(url, headers, body, timeout, READ_LIMIT)
        except AttemptTimeout:
            return Answer(None, f"timeout: no answer within {timeout:g} s", None)
        except TransportError as exc:
            return Answer(None, f"connection error: {exc}", None)
        text = response.body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
        return judge_answer(response.status, response.headers, text, _INCOMPLETE.get(response.unfinished or ""))

    def close(self) -> None:
        """Close the connections; from another thread, this cuts the attempt in flight."""
        self.connections.close()


class HttpxSender:
    """A ``Sender`` over an ``httpx.Client``: in-process WSGI/ASGI apps (``--app``, the pytest fixture).

    Deliveries over the network go through ``WireSender``, which bounds each
    attempt by its deadline; here the client's own timeouts apply.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
        import httpx

        request = self.client.build_request(METHOD, url, content=body, headers=headers, timeout=timeout)
        try:
            response = self.client.send(request, stream=True)
        except httpx.TimeoutException:
            return Answer(None, f"timeout: no answer within {timeout:g} s", None)
        except httpx.HTTPError as exc:
            return Answer(None, f"connection error: {_describe(exc)}", None)
        try:
            body_text = _read_limited(response)
        finally:
            response.close()
        return judge_answer(response.status_code, dict(response.headers), body_text)


# Why a logged body is not the whole body the server announced (RFC 9112 §8: a client records
# an incomplete answer as incomplete). A body longer than READ_LIMIT is not one of them: that
# cut is the documented read limit, not the server's doing.
_INCOMPLETE = {
    "closed": "the server closed the connection before the body's end",
    "timeout": "the attempt's time ran out before the body's end",
}


def judge_answer(status: int, answer_headers: dict[str, str], body: str, incomplete: str | None = None) -> Answer:
    """An ``Answer`` from a status, lower-cased headers and the kept body text.

    ``incomplete``: why the body stopped before its announced end, logged with it (the status
    still decides the outcome: the server did answer).
    """
    logged: dict[str, Any] = {"status": status, "headers": answer_headers, "body": body}
    if incomplete is not None:
        logged["incomplete"] = incomplete
    error = None if 200 <= status <= 299 else f"HTTP {status_text(status)}"
    if 300 <= status <= 399 and status != 304:  # 304 Not Modified redirects nowhere
        location = answer_headers.get("location")
        followed = f"; Location: {location})" if location else ")"
        error = f"HTTP {status_text(status)} (redirects are not followed{followed}"
    return Answer(status, error, logged, parse_retry_after(answer_headers.get("retry-after")))


def _read_limited(response: httpx.Response) -> str:
    """Up to 64 KiB of the body (then stop reading); the first 4 KiB as text for the log.

    A body cut short by the server does not change the outcome: the status decides.
    """
    import httpx

    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= READ_LIMIT:
                break
    except httpx.HTTPError:
        pass
    return b"".join(chunks)[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")


def _describe(exc: Exception) -> str:
    """A short reason from an httpx error: the OS message when there is one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def disable_reason(record: DeliveryRecord) -> str:
    """``HTTP 401 Unauthorized from POST https://…``: why the endpoint was disabled."""
    return f"HTTP {status_text(record.status or 0)} from {METHOD} {record.url}"


def skipped_record(delivery: Delivery, endpoint: str, logged_headers: dict[str, str] | None,
                   reason: str) -> DeliveryRecord:
    """A delivery not attempted (its endpoint is disabled), logged so it can be replayed."""
    return DeliveryRecord(
        id=ids.delivery_id(), event_id=delivery.event_id, event=delivery.event, endpoint=endpoint,
        url=delivery.url, mode=delivery.mode, replay_of=delivery.replay_of, at=now_iso(),
        outcome="skipped", status=None, error=reason, duration_ms=None, attempts=[],
        request=delivery.logged_request(logged_headers or {}), response=None,
        scenario=delivery.scenario,
    )
