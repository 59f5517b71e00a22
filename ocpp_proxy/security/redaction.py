"""Secrets out of the logs, and charger configuration secrets out of OCPP frames.

Passwords, tokens and ``Authorization`` values must never reach a log line. The proxy's own
code does not log them; this is the safety net for everything else (aiohttp's messages,
libraries, exception texts): :class:`RedactingFilter` rewrites each record's message before a
handler writes it, and :class:`RedactingAccessLogger` logs request lines with ``token=`` (and
other secret query values) replaced.

A backend may set a charger's own password over OCPP: 1.6 ChangeConfiguration
``AuthorizationKey`` (security whitepaper §2), 2.x SetVariables ``SecurityCtrlr.BasicAuthPassword``
(OCPP 2.0.1 part 2 A01). :func:`mask_config_secrets` masks the value of every configuration key
or variable whose name holds ``Password``, ``Secret`` or ``Key`` in the text of a frame (a
request or an answer such as GetConfiguration's), before the message log, the audit log or a log
line gets it; the charger still receives the real value.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from ocpp_proxy.config import ProxyConfig

MASK = "***"
#: ``Authorization: <scheme> <value>`` (also as a repr'd dict item ``'Authorization': '...'``).
_AUTHORIZATION = re.compile(
    r"""(?i)(authorization['"]?\s*[:=]\s*['"]?)(?:(basic|bearer|digest)\s+)?[^\s'",;}]+"""
)
#: Query parameters whose values are secrets.
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:token|password|secret|api_key|key)=)[^&\s\"']*")
#: Names of configuration keys / variables whose values are secrets (``GetConfigurationMaxKeys``
#: is a count, not a key).
SECRET_NAME = re.compile(r"(?i)password|secret|key(?!s)")
#: A JSON object with at most one level of objects inside (where configuration entries sit:
#: 1.6 ``{"key": ..., "value": ...}``, 2.x ``{"variable": {"name": ...}, "attributeValue": ...}``).
_OBJECT = re.compile(r"\{(?:[^{}\"]|\"(?:[^\"\\]|\\.)*\"|\{(?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*\})*\}")
#: The name of the key (1.6) or variable (2.x) an entry sets or reports.
_ENTRY_NAME = re.compile(
    r'"key"\s*:\s*"((?:[^"\\]|\\.)*)"'
    r'|"variable"\s*:\s*\{[^{}]*?"name"\s*:\s*"((?:[^"\\]|\\.)*)"'
)
#: The value an entry sets or reports.
_ENTRY_VALUE = re.compile(r'("(?:value|attributeValue)"\s*:\s*)"(?:[^"\\]|\\.)*"')
#: Secrets shorter than this are not redacted by value (too many false hits; config already
#: requires tokens of 8 characters and more).
MIN_SECRET_LENGTH = 4


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with Authorization values, secret query values and ``secrets`` masked."""
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + (m.group(2) or "") + " " + MASK, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = mask_config_secrets(text)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _secret_named(text: str) -> bool:
    return any(SECRET_NAME.search(key or variable) for key, variable in _ENTRY_NAME.findall(text))


def _mask_entry(match: re.Match[str]) -> str:
    entry = match.group(0)
    inner = entry[1:-1]
    if "{" in inner and not re.search(r'"variable"\s*:\s*\{', inner):
        # Not a 2.x entry but an object holding entries (1.6 GetConfiguration's answer).
        return "{" + _OBJECT.sub(_mask_entry, inner) + "}"
    if _secret_named(entry):
        return _ENTRY_VALUE.sub(lambda m: m.group(1) + '"' + MASK + '"', entry)
    return entry


def mask_config_secrets(text: str) -> str:
    """``text`` (an OCPP frame or a JSON payload) with secret configuration values masked.

    In: JSON text, possibly cut short. Out: the same text where every object naming a key or
    variable that matches :data:`SECRET_NAME` (``"key"``, or ``"variable": {"name": ...}``)
    has its ``value`` / ``attributeValue`` string replaced by ``"***"``; a text that cannot
    hold one is returned as it is, without copying. If the text was cut inside such an
    object, the rest of it after the name is masked too.
    """
    if '"key"' not in text and '"variable"' not in text:
        return text  # the common case, at the cost of two substring searches
    masked = _OBJECT.sub(_mask_entry, text)
    # A text cut short (a log line, an audit summary) may end inside an entry.
    tail = masked.rfind("{")
    if tail >= 0 and "}" not in masked[tail:] and _secret_named(masked[tail:]):
        masked = masked[:tail] + "{" + MASK
    return masked


def mask_config_secrets_in(value: Any) -> Any:
    """A JSON value (a payload) with secret configuration values masked.

    As :func:`mask_config_secrets` masks its text; ``value`` itself is left as it is.
    """
    text = json.dumps(value, ensure_ascii=False)
    masked = mask_config_secrets(text)
    return value if masked == text else json.loads(masked)


def configured_secrets(config: ProxyConfig) -> tuple[str, ...]:
    """Every secret value in the config: passwords and tokens, at least 4 characters long."""
    values = [
        config.ha_token,
        config.mqtt_password,
        config.api_token,
        *(c.password for c in config.chargers),
        *(b.token for b in config.inbound_backends),
        *(s.password for s in config.ocpp_services),
        *(s.token for s in config.ocpp_services),
    ]
    # Longest first, so that a secret containing another is masked whole.
    return tuple(sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True))


class RedactingFilter(logging.Filter):
    """A filter for log handlers that masks secrets in every record it passes.

    Args:
        secrets: literal values to mask wherever they appear (see :func:`configured_secrets`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted form; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a broken format string: let the handler report it as usual
        redacted = redact(message, self.secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Tracebacks carry messages too (an aiohttp error quoting a URL with a token).
            traceback = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(traceback, self.secrets)
        return True


def install(config: ProxyConfig, logger: logging.Logger | None = None) -> RedactingFilter:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (default: the root).

    Handler filters see records from every logger (logger filters would not see records
    propagated from child loggers). Returns the filter.
    """
    redacting = RedactingFilter(configured_secrets(config))
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(redacting)
    return redacting


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log without secrets: ``remote "METHOD path?query" status bytes time``.

    aiohttp's default format prints the whole request line, and an inbound backend may put its
    secret in the query (``/backend?id=x&token=...``); here secret query values are masked.
    """

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Log one request (called by aiohttp when a response is done)."""
        line = redact(request.raw_path)
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote,
            request.method,
            line,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        """Whether the access logger would write anything (skips the work when not)."""
        return self.logger.isEnabledFor(logging.INFO)
