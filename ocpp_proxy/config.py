"""The proxy's configuration: load a YAML or JSON file, validate it, return frozen dataclasses.

One format serves both ways of running the proxy: a YAML (or JSON) file given on the command
line, and the ``/data/options.json`` that the Home Assistant Supervisor writes from the app's
options. A ``.json`` file is read with the JSON parser (the Supervisor writes control characters
inside strings unescaped, which YAML refuses or changes); any other file with
:func:`yaml.safe_load`.

Rules the app's option schema cannot express (duplicate backend ids, an unknown
``preferred_provider``, a service whose ``auth_type`` has no secret or whose URL is no WebSocket
URL, an inbound backend's short token) raise by default. Given ``set_aside``,
:func:`parse_config` reports each through it instead and leaves the offending part out, so that
the Home Assistant app keeps running with a clear log line rather than restarting in a loop.

Every problem is reported as a :class:`ConfigError` naming the option by its path
(``ocpp_services[1].url``) and saying what is wrong with it. Secrets (passwords and tokens)
never appear in an error message, nor in the ``repr`` of the dataclasses.

A key whose value is null (``password:`` with nothing after it in YAML) counts as absent, so it
takes its default; a required key that is null is reported as required.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import voluptuous as vol

from ocpp_proxy.policy.authorization import (
    AuthorizationMode,
    HomeCard,
    IdTagRoute,
    OfflineAuthorization,
    ShareSessions,
)
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.security.identity import MAX_CHARGE_POINT_ID, charge_point_id_problem

if TYPE_CHECKING:
    import yaml

__all__ = [
    "DEFAULTS",
    "ApiTokenConfig",
    "ConfigError",
    "InboundBackendConfig",
    "ProxyConfig",
    "ServiceConfig",
    "WebhookConfig",
    "load_config",
    "parse_config",
]

#: The embedded defaults: every top-level option with its default value, as the options
#: mapping that :func:`parse_config` accepts. ``load_config(None)`` uses exactly this.
DEFAULTS: Final[dict[str, Any]] = {
    "ocpp_version": "1.6",
    "auto_detect_ocpp_version": True,
    "charge_point_id": "CP_1",
    "preferred_provider": "",
    "response_timeout": 10.0,
    "ocpp_services": [],
    "inbound_backends": [],
    "allow_shared_charging": True,
    "rate_limit_seconds": 0,
    "presence_sensor": "",
    "override_input_boolean": "",
    "allowed_providers": [],
    "disallowed_providers": [],
    "max_frame_bytes": 1048576,
    "ping_interval": 30.0,
    "drain_timeout": 5.0,
    "heartbeat_interval": 300,
    "durable_outbox": True,
    "outbox_max_messages": 20000,
    "message_log": True,
    "message_log_days": 7.0,
    "message_log_max_rows": 500000,
    "message_log_max_mb": 200,
    "audit_log_days": 90,
    "remote_start_window": 300.0,
    "presence_blocks_backends": True,
    "max_current_a": None,
    "charging_schedule": [],
    "start_race_window": 0.2,
    "ha_url": "",
    "ha_token": "",
    "mqtt_host": "",
    "mqtt_port": 1883,
    "mqtt_username": "",
    "mqtt_password": "",
    "mqtt_discovery_prefix": "homeassistant",
    "api_token": "",
    "api_public_read": False,
    "api_tokens": [],
    "webhooks": [],
    "backend_down_grace": 60.0,
    "allowed_networks": [],
    "lan_only": False,
    "trusted_proxies": [],
    "home_rate_per_kwh": 0.0,
    "home_currency": "EUR",
    "authorization": "any_backend",
    "id_tag_routes": [],
    "home_cards": [],
    "offline_authorization": "known_cards",
    "known_card_days": 30.0,
    "chargers": [],
    "ssl_certfile": "",
    "ssl_keyfile": "",
    "ssl_client_ca": "",
    "client_certificate_id": "cn",
    "strict_charger_validation": False,
    "handshake_timeout": 10.0,
    "max_connections": 200,
    "max_connections_per_address": 20,
    "host": "0.0.0.0",
    "port": 9000,
    "ingress_port": 0,
    "data_dir": "./data",
    "log_level": "INFO",
}

AUTH_TYPES: Final = ("none", "basic", "token")
#: REST API roles, each allowing what the one before it does and more.
API_ROLES: Final = ("read", "control", "admin")
#: Webhook event names (as in :mod:`ocpp_proxy.event_bus`, which must not import config).
WEBHOOK_EVENTS: Final = (
    "charger.connected",
    "charger.disconnected",
    "session.started",
    "session.stopped",
    "connector.faulted",
    "connector.recovered",
    "backend.down",
    "backend.up",
    "command.refused",
    "override.changed",
    "shared_charging.changed",
    "limit.changed",
    "messages.at_risk",
    "webhook.test",
)
#: Shortest secret accepted for an API token or a webhook.
MIN_SECRET: Final = 16
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: The only placeholder a service URL may contain; replaced by the charge point id on connect.
URL_PLACEHOLDER: Final = "{charge_point_id}"
#: The shortest ``api_token`` accepted (a shorter one is guessed too soon, even throttled).
MIN_API_TOKEN: Final = 16

_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")


class ConfigError(Exception):
    """An invalid or unreadable configuration.

    ``key`` is the path of the offending option (``ocpp_services[1].url``), or ``""`` when the
    problem is the file itself (missing, unreadable, not YAML, not a mapping). ``reason`` says
    what is wrong. ``str()`` is ``"<key>: <reason>"``, or just the reason when ``key`` is empty.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}" if self.key else self.reason


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """An upstream CSMS the proxy connects out to (one entry of ``ocpp_services``).

    ``url`` is a ``ws://`` or ``wss://`` URL and may contain ``{charge_point_id}``, replaced by
    the charger's id when connecting. ``username`` empty means the charge point id is used at
    connect time. ``password`` is used when ``auth_type`` is ``"basic"``, ``token`` when it is
    ``"token"``; neither shows in ``repr``. ``ca_file`` is a CA bundle path for ``wss://`` (empty:
    the system store). ``rate_per_kwh`` is the price per kWh in ``currency``.
    ``allow_config_changes`` lets this CSMS change the charger's configuration.
    """

    id: str
    url: str
    version: OcppVersion = OcppVersion.V16  # parse_config sets the top-level ocpp_version
    auth_type: str = "none"  # "none" | "basic" | "token"
    username: str = ""  # "" = the charge point id, filled in at connect time
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    enabled: bool = True
    ca_file: str = ""  # CA bundle path for wss://; "" = system default
    rate_per_kwh: float = 0.0  # price per kWh, in currency, >= 0
    currency: str = "EUR"
    allow_config_changes: bool = False
    client_certfile: str = ""  # PEM client certificate (security profile 3); "" = none
    client_keyfile: str = ""  # its private key
    verify_tls: bool = True  # False: wss:// without certificate checks (logged as a warning)
    share_sessions: ShareSessions = ShareSessions.ALL  # own: only the sessions it owns


@dataclass(frozen=True, slots=True)
class ChargerCredential:
    """A charger allowed to connect (``chargers``): its id and HTTP Basic password.

    OCPP security profiles 1 and 2 (1.6 security whitepaper; 2.0.1 part 2 A00): the username is
    the charge point id.
    """

    id: str
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class InboundBackendConfig:
    """A backend that connects in to the proxy at ``/backend?id=ID`` (``inbound_backends``).

    ``token`` is the secret it must present (at least 8 characters; not shown in ``repr``).
    ``rate_per_kwh``, ``currency`` and ``allow_config_changes`` are as in :class:`ServiceConfig`.
    ``version`` is the OCPP version the backend speaks; None: the charger's (when it differs
    from the charger's, the proxy translates, docs/translation.md).
    """

    id: str
    token: str = field(repr=False)
    enabled: bool = True
    rate_per_kwh: float = 0.0  # price per kWh, in currency, >= 0
    currency: str = "EUR"
    allow_config_changes: bool = False
    share_sessions: ShareSessions = ShareSessions.ALL  # own: only the sessions it owns
    version: OcppVersion | None = None


@dataclass(frozen=True, slots=True)
class ApiTokenConfig:
    """A named REST API token (``api_tokens``) and its role: read, control or admin."""

    name: str
    token: str = field(repr=False)
    role: str = "read"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """A webhook (``webhooks``): events POSTed as JSON to ``url``, signed with ``secret``.

    ``events`` are event names (empty: every event); ``max_queue`` bounds the deliveries kept
    for it while it is unreachable (the oldest are dropped beyond); ``timeout`` is how long one
    delivery may take (s).
    """

    id: str
    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] = ()
    max_queue: int = 10000
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """Daily hours when charging may run, and its limit then (A).

    ``start`` and ``end`` are ``HH:MM`` in the proxy's local time; a period whose end is not
    after its start runs past midnight. Outside every period the charger gets 0 A.
    """

    start: str
    end: str
    max_current_a: float

    def minutes(self) -> tuple[int, int]:
        """Start and end in minutes after midnight."""
        return _minutes(self.start), _minutes(self.end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The whole validated configuration of the proxy.

    Durations are in seconds, sizes in bytes. ``charge_point_id`` is used when a charger connects
    to plain ``/charger`` without an id. ``preferred_provider`` is ``""`` or the id of a
    configured service or inbound backend. ``heartbeat_interval`` is what the local fallback CSMS
    tells the charger in its BootNotification response. ``drain_timeout`` is how long upstream
    links may keep delivering after the charger disconnects. ``outbox_max_messages`` bounds the
    transaction messages kept for one backend of one charger (default: a week of one-minute
    MeterValues, twice over); ``remote_start_window`` is how long a backend's accepted remote
    start claims the charger's next transaction on that connector as that backend's session.
    """

    ocpp_version: OcppVersion = OcppVersion.V16
    auto_detect_ocpp_version: bool = True
    charge_point_id: str = "CP_1"
    preferred_provider: str = ""
    response_timeout: float = 10.0  # s, >= 0.1
    ocpp_services: tuple[ServiceConfig, ...] = ()
    inbound_backends: tuple[InboundBackendConfig, ...] = ()
    allow_shared_charging: bool = True
    rate_limit_seconds: int = 0  # s, >= 0
    presence_sensor: str = ""  # Home Assistant entity id
    override_input_boolean: str = ""  # Home Assistant entity id
    allowed_providers: tuple[str, ...] = ()
    disallowed_providers: tuple[str, ...] = ()
    max_frame_bytes: int = 1048576  # bytes, >= 1024
    ping_interval: float = 30.0  # s, >= 0.1; WebSocket ping interval
    drain_timeout: float = 5.0  # s, >= 0
    heartbeat_interval: int = 300  # s, >= 1
    durable_outbox: bool = True  # keep unconfirmed transaction messages in SQLite
    outbox_max_messages: int = 20000  # per backend and charger, >= 100
    message_log: bool = True  # log every OCPP frame in and out
    message_log_days: float = 7.0  # days the message log keeps, >= 0.1
    message_log_max_rows: int = 500000  # rows the message log keeps, >= 1000
    message_log_max_mb: float = 200.0  # MiB of frames the message log keeps, >= 1
    audit_log_days: float = 90.0  # days the audit log keeps, > 0
    remote_start_window: float = 300.0  # s a backend's remote start claims the next start
    presence_blocks_backends: bool = True  # no backend starts while someone is home
    max_current_a: float | None = None  # A, the homeowner's charger-wide limit; None: none
    charging_schedule: tuple[SchedulePeriod, ...] = ()  # daily hours when charging may run
    start_race_window: float = 0.2  # s competing remote starts are gathered before one wins
    # Home Assistant, outside the Supervisor (inside it, SUPERVISOR_TOKEN is used).
    ha_url: str = ""  # e.g. http://homeassistant.local:8123; "" = none
    ha_token: str = field(default="", repr=False)  # a long-lived access token
    # MQTT broker for Home Assistant discovery; "" = no MQTT.
    mqtt_host: str = ""
    mqtt_port: int = 1883  # 1-65535
    mqtt_username: str = ""
    mqtt_password: str = field(default="", repr=False)
    mqtt_discovery_prefix: str = "homeassistant"
    # The homeowner's REST API and web page on the direct port.
    api_token: str = field(default="", repr=False)  # "" = generated at first start
    api_public_read: bool = False  # read-only requests without the token
    api_tokens: tuple[ApiTokenConfig, ...] = ()  # named tokens with a role
    # Webhooks, and how long a backend link must stay down before backend.down is sent (s).
    webhooks: tuple[WebhookConfig, ...] = ()
    backend_down_grace: float = 60.0
    # Who may connect: CIDRs (empty: anyone), lan_only adds the private ranges; the
    # X-Forwarded-For of a request is used only when it comes from a trusted_proxies address.
    allowed_networks: tuple[str, ...] = ()
    lan_only: bool = False
    trusted_proxies: tuple[str, ...] = ()
    home_rate_per_kwh: float = 0.0  # the home's electricity price, for cost estimates, >= 0
    home_currency: str = "EUR"
    # Card authorization across backends (issue 12; see ocpp_proxy.policy.authorization).
    authorization: AuthorizationMode = AuthorizationMode.ANY_BACKEND
    id_tag_routes: tuple[IdTagRoute, ...] = ()  # cards asked of one backend only
    home_cards: tuple[HomeCard, ...] = field(default=(), repr=False)  # personal data
    offline_authorization: OfflineAuthorization = OfflineAuthorization.KNOWN_CARDS
    known_card_days: float = 30.0  # days a card a backend accepted stays known, > 0
    # Security.
    chargers: tuple[ChargerCredential, ...] = ()  # known chargers; () = any may connect
    ssl_certfile: str = ""  # PEM certificate for wss:// on the charger side; "" = plain ws://
    ssl_keyfile: str = ""
    ssl_client_ca: str = ""  # CA that charger client certificates must chain to (profile 3)
    client_certificate_id: str = "cn"  # cn | san: where the certificate names the charge point
    strict_charger_validation: bool = False  # reject charger frames that break the schema
    handshake_timeout: float = 10.0  # s a peer has to complete the WebSocket handshake, >= 0.1
    max_connections: int = 200  # open WebSockets in total, >= 1
    max_connections_per_address: int = 20  # open WebSockets per remote address, >= 1
    host: str = "0.0.0.0"
    port: int = 9000  # 1-65535
    # Home Assistant ingress: a second, plain-HTTP listener for the Supervisor only; 0 = none.
    ingress_port: int = 0  # 0-65535
    data_dir: str = "./data"
    log_level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR | CRITICAL

    @property
    def backend_ids(self) -> tuple[str, ...]:
        """The ids of the enabled services, then of the enabled inbound backends, in order."""
        return tuple(s.id for s in self.ocpp_services if s.enabled) + tuple(
            b.id for b in self.inbound_backends if b.enabled
        )

    def with_overrides(self, **overrides: Any) -> ProxyConfig:
        """Return a copy with the given fields replaced (for command-line flags), validated.

        Field names are as in the dataclass; an unknown name raises :class:`TypeError` (as
        :func:`dataclasses.replace` does), an invalid value a :class:`ConfigError`. Values are
        normalised as when loading (``log_level="debug"`` becomes ``"DEBUG"``).
        """
        replaced = dataclasses.replace(self, **overrides)
        return parse_config(_to_options(replaced))


# --- validators ------------------------------------------------------------------------------
# Each raises vol.Invalid with a readable reason. None of them puts the value of a secret
# (password, token) in its message.


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: object) -> str:
    if not isinstance(value, str):
        # YAML reads unquoted 1234, 0x1F or yes as a number or boolean, not a string.
        hint = " (quote it in YAML)" if isinstance(value, int | float) else ""
        raise vol.Invalid(f"expected a string, got {_type_name(value)}{hint}")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {_type_name(value)}")
    return value


def _integer(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def validate(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise vol.Invalid(f"expected an integer, got {_type_name(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise vol.Invalid(f"must be an integer {bounds}, got {value}")
        return value

    return validate


def _number(minimum: float, *, exclusive: bool) -> Callable[[object], float]:
    def validate(value: object) -> float:
        if not _is_number(value):
            raise vol.Invalid(f"expected a number, got {_type_name(value)}")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number) or number < minimum or (exclusive and number == minimum):
            raise vol.Invalid(
                f"must be a number {'>' if exclusive else '>='} {minimum:g}, got {value}"
            )
        return number

    return validate


def _identifier(value: object) -> str:
    text = _string(value)
    if not _ID_RE.fullmatch(text):
        raise vol.Invalid(f"must be 1-64 characters of A-Z a-z 0-9 _ . -, got {text!r}")
    return text


def _charge_point_id(value: object) -> str:
    text = _string(value)
    problem = charge_point_id_problem(text)
    if problem is not None:
        raise vol.Invalid(
            f"{problem}: it must be 1-{MAX_CHARGE_POINT_ID} printable characters without '/', "
            f"not '.' or '..', got {text!r}"
        )
    return text


def _ocpp_version(value: object) -> OcppVersion:
    # YAML reads an unquoted 1.6 (or 2.1) as a float; its repr is the version string.
    text = repr(value) if _is_number(value) else value
    try:
        return OcppVersion(text)
    except (ValueError, TypeError):
        choices = ", ".join(v.value for v in OcppVersion)
        raise vol.Invalid(f"must be one of {choices}, got {value!r}") from None


def _ws_url(value: object) -> str:
    text = _string(value)
    try:
        parts = urlsplit(text.replace(URL_PLACEHOLDER, "x"))
        valid = parts.scheme.lower() in ("ws", "wss") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise vol.Invalid(f"expected a ws:// or wss:// URL, got {_redact_url(text)!r}")
    unknown = [p for p in _PLACEHOLDER_RE.findall(text) if p != URL_PLACEHOLDER]
    if unknown:
        raise vol.Invalid(
            f"unknown placeholder {unknown[0]} in URL; only {URL_PLACEHOLDER} is supported"
        )
    return text


def _auth_type(value: object) -> str:
    if value not in AUTH_TYPES:
        raise vol.Invalid(f"must be one of {', '.join(AUTH_TYPES)}, got {value!r}")
    return value  # type: ignore[return-value]


def _choice(*choices: str) -> Callable[[object], str]:
    def validate(value: object) -> str:
        if value not in choices:
            raise vol.Invalid(f"must be one of {', '.join(choices)}, got {value!r}")
        return value  # type: ignore[return-value]

    return validate


def _log_level(value: object) -> str:
    text = _string(value)
    if text.upper() not in LOG_LEVELS:
        raise vol.Invalid(f"must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text.upper()


def _discovery_prefix(value: object) -> str:
    text = _string(value)
    if not text:
        raise vol.Invalid("must not be empty (Home Assistant listens on homeassistant/...)")
    return text


def _member(kind: type[StrEnum]) -> Callable[[object], Any]:
    """A validator for one of the values of ``kind``, giving the enum member."""

    def validate(value: object) -> Any:
        try:
            return kind(value)
        except ValueError:
            choices = ", ".join(member.value for member in kind)
            raise vol.Invalid(f"must be one of {choices}, got {value!r}") from None

    return validate


#: The longest card id: a 2.0.1 ``IdTokenType.idToken`` (36; a 1.6 ``IdToken`` is 20).
CARD_ID_MAX: Final = 36


#: A card id: printable ASCII without spaces (1.6 ``CiString20Type``, 2.0.1 ``identifierString``
#: of ``idToken``). The app's schema (config.yaml) says the same with ``match()``.
_CARD_ID_RE = re.compile(r"[!-~]{1,36}")
#: A route's match: an exact card id, or a prefix of one ending in a single ``*``.
_CARD_MATCH_RE = re.compile(r"[!-)+-~]{1,36}|[!-)+-~]{1,35}\*")
_DATE_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")


def _card_id(value: object) -> str:
    text = _string(value)
    if not _CARD_ID_RE.fullmatch(text):
        raise vol.Invalid(
            f"must be 1-{CARD_ID_MAX} printable characters without spaces (an id tag or id token)"
        )
    return text


def _card_match(value: object) -> str:
    text = _string(value)
    if not _CARD_MATCH_RE.fullmatch(text):
        raise vol.Invalid(
            "must be an exact card id or a prefix ending in '*' (one '*', at the end only; "
            f"1-{CARD_ID_MAX} printable characters without spaces)"
        )
    return text


def _expiry(value: object) -> float:
    """An ISO 8601 date, YYYY-MM-DD -> its start in local time (Unix s): the card expires then."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value  # YAML reads an unquoted date itself
    elif isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise vol.Invalid(f"no such day: {value!r}") from None
    else:
        shown = repr(value) if isinstance(value, str) else _type_name(value)
        raise vol.Invalid(f"expected an ISO 8601 date as YYYY-MM-DD (2027-01-31), got {shown}")
    return datetime.combine(day, datetime.min.time()).timestamp()


def _secret(value: object) -> str:
    text = _string(value)
    if len(text) < MIN_SECRET:
        raise vol.Invalid(f"must be at least {MIN_SECRET} characters")
    return text


def _api_role(value: object) -> str:
    if value not in API_ROLES:
        raise vol.Invalid(f"must be one of {', '.join(API_ROLES)}, got {value!r}")
    return value  # type: ignore[return-value]


def _http_url(value: object) -> str:
    text = _string(value)
    try:
        parts = urlsplit(text)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise vol.Invalid(f"expected an http:// or https:// URL, got {_redact_url(text)!r}")
    return text


def _event_name(value: object) -> str:
    text = _string(value)
    if text not in WEBHOOK_EVENTS:
        raise vol.Invalid(f"unknown event {text!r}; one of {', '.join(WEBHOOK_EVENTS)}")
    return text


def _network(value: object) -> str:
    text = _string(value)
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        reason = f"expected an IP address or CIDR such as 192.168.1.0/24, got {text!r}"
        raise vol.Invalid(reason) from None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


def _redact_url(url: str) -> str:
    """Hide the credentials of a URL such as ``ws://user:secret@host`` before showing it."""
    return re.sub(r"(?<=//)[^/@]*@", "***@", url)


_RATE = _number(0.0, exclusive=False)

#: The shortest secret an inbound backend may present.
MIN_INBOUND_TOKEN: Final = 8


#: The least a timeout, an interval or the message log's age may be (s or days): an inclusive
#: bound, as the Supervisor's ``float(0.1,)`` in the app's schema, so both accept the same values.
MIN_DURATION: Final = 0.1
_POSITIVE_DURATION = _number(MIN_DURATION, exclusive=False)

_SERVICE_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _identifier,
        vol.Required("url"): _string,  # checked in _check_services
        vol.Optional("version"): _ocpp_version,
        vol.Optional("auth_type", default="none"): _auth_type,
        vol.Optional("username", default=""): _string,
        vol.Optional("password", default=""): _string,
        vol.Optional("token", default=""): _string,
        vol.Optional("enabled", default=True): _boolean,
        vol.Optional("ca_file", default=""): _string,
        vol.Optional("rate_per_kwh", default=0.0): _RATE,
        vol.Optional("currency", default="EUR"): _string,
        vol.Optional("allow_config_changes", default=False): _boolean,
        vol.Optional("client_certfile", default=""): _string,
        vol.Optional("client_keyfile", default=""): _string,
        vol.Optional("verify_tls", default=True): _boolean,
        vol.Optional("share_sessions", default="all"): _member(ShareSessions),
    }
)

_CHARGER_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _charge_point_id,
        vol.Required("password"): _string,
    }
)


def _time_of_day(value: object) -> str:
    text = _string(value)
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
        raise vol.Invalid(f"expected a time of day as HH:MM, got {text!r}")
    return text


_SCHEDULE_PERIOD = vol.Schema(
    {
        vol.Required("start"): _time_of_day,
        vol.Required("end"): _time_of_day,
        vol.Required("max_current_a"): _number(0.0, exclusive=False),
    }
)

_INBOUND_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _identifier,
        vol.Required("token"): _string,  # its length: _check_inbound
        vol.Optional("enabled", default=True): _boolean,
        vol.Optional("rate_per_kwh", default=0.0): _RATE,
        vol.Optional("currency", default="EUR"): _string,
        vol.Optional("allow_config_changes", default=False): _boolean,
        vol.Optional("version"): _ocpp_version,
        vol.Optional("share_sessions", default="all"): _member(ShareSessions),
    }
)

_ID_TAG_ROUTE = vol.Schema(
    {
        vol.Required("match"): _card_match,
        vol.Required("backend"): _identifier,
    }
)

_HOME_CARD = vol.Schema(
    {
        vol.Required("id"): _card_id,
        vol.Optional("name", default=""): _string,
        vol.Optional("expires"): _expiry,
    }
)

_API_TOKEN_SCHEMA = vol.Schema(
    {
        vol.Required("name"): _identifier,
        vol.Required("token"): _string,  # its length is checked in parse_config
        vol.Optional("role", default="read"): _api_role,
    }
)

_WEBHOOK_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _identifier,
        vol.Required("url"): _http_url,
        vol.Required("secret"): _string,  # its length is checked in parse_config
        vol.Optional("events", default=list): [_event_name],
        vol.Optional("max_queue", default=10000): _integer(1),
        vol.Optional("timeout", default=10.0): _POSITIVE_DURATION,
    }
)

_TOP_VALIDATORS: dict[str, Any] = {
    "ocpp_version": _ocpp_version,
    "auto_detect_ocpp_version": _boolean,
    "charge_point_id": _charge_point_id,
    "preferred_provider": _string,
    "response_timeout": _POSITIVE_DURATION,
    "ocpp_services": [_SERVICE_SCHEMA],
    "inbound_backends": [_INBOUND_SCHEMA],
    "allow_shared_charging": _boolean,
    "rate_limit_seconds": _integer(0),
    "presence_sensor": _string,
    "override_input_boolean": _string,
    "allowed_providers": [_string],
    "disallowed_providers": [_string],
    "max_frame_bytes": _integer(1024),
    "ping_interval": _POSITIVE_DURATION,
    "drain_timeout": _number(0.0, exclusive=False),
    "heartbeat_interval": _integer(1),
    "durable_outbox": _boolean,
    "outbox_max_messages": _integer(100),
    "message_log": _boolean,
    "message_log_days": _POSITIVE_DURATION,
    "message_log_max_rows": _integer(1000),
    "message_log_max_mb": _number(1.0, exclusive=False),
    "audit_log_days": _POSITIVE_DURATION,
    "remote_start_window": _number(1.0, exclusive=False),
    "presence_blocks_backends": _boolean,
    "max_current_a": vol.Any(None, _number(0.0, exclusive=False)),
    "charging_schedule": [_SCHEDULE_PERIOD],
    "start_race_window": _number(0.0, exclusive=False),
    "ha_url": _string,
    "ha_token": _string,
    "mqtt_host": _string,
    "mqtt_port": _integer(1, 65535),
    "mqtt_username": _string,
    "mqtt_password": _string,
    "mqtt_discovery_prefix": _discovery_prefix,
    "api_token": _string,
    "api_public_read": _boolean,
    "api_tokens": [_API_TOKEN_SCHEMA],
    "webhooks": [_WEBHOOK_SCHEMA],
    "backend_down_grace": _number(0.0, exclusive=False),
    "allowed_networks": [_network],
    "lan_only": _boolean,
    "trusted_proxies": [_network],
    "home_rate_per_kwh": _number(0.0, exclusive=False),
    "home_currency": _string,
    "authorization": _member(AuthorizationMode),
    "id_tag_routes": [_ID_TAG_ROUTE],
    "home_cards": [_HOME_CARD],
    "offline_authorization": _member(OfflineAuthorization),
    "known_card_days": _POSITIVE_DURATION,
    "chargers": [_CHARGER_SCHEMA],
    "ssl_certfile": _string,
    "ssl_keyfile": _string,
    "ssl_client_ca": _string,
    "client_certificate_id": _choice("cn", "san"),
    "strict_charger_validation": _boolean,
    "handshake_timeout": _POSITIVE_DURATION,
    "max_connections": _integer(1),
    "max_connections_per_address": _integer(1),
    "host": _string,
    "port": _integer(1, 65535),
    "ingress_port": _integer(0, 65535),
    "data_dir": _string,
    "log_level": _log_level,
}
assert _TOP_VALIDATORS.keys() == DEFAULTS.keys()

_SCHEMA = vol.Schema(
    {
        vol.Optional(key, default=copy.deepcopy(DEFAULTS[key])): validator
        for key, validator in _TOP_VALIDATORS.items()
    }
)

# voluptuous's own wording -> ours.
_REASONS: Final = {
    "extra keys not allowed": "unknown option",
    "required key not provided": "required",
    "expected a dictionary": "expected a mapping",
    "expected dict": "expected a mapping",
    "expected list": "expected a list",
}


# --- loading ---------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str] | None, *, set_aside: Callable[[ConfigError], None] | None = None
) -> ProxyConfig:
    """Load and validate the configuration file at ``path``; with ``None``, the defaults.

    A ``.json`` file is parsed as JSON (control characters inside strings allowed, as the
    Supervisor writes them); any other file as YAML. Both are UTF-8; an empty file means all
    defaults. ``set_aside`` is as in :func:`parse_config`. Raises :class:`ConfigError` if the file
    is missing or unreadable, does not parse, its top level is not a mapping, or an option is
    invalid.
    """
    if path is None:
        return parse_config(DEFAULTS, set_aside=set_aside)
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig") as stream:
            text = stream.read()
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {name}") from None
    except UnicodeDecodeError:
        raise ConfigError("", f"config file {name} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {name}: {exc.strerror or exc}") from None
    if name.lower().endswith(".json"):
        data = _parse_json(name, text)
    else:
        # Imported here: the app's options and the embedded defaults are JSON, and PyYAML
        # costs about 1 MB of memory.
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError("", _yaml_reason(name, exc)) from None
    return parse_config({} if data is None else data, set_aside=set_aside)


def _parse_json(name: str, text: str) -> Any:
    if not text.strip():
        return None
    try:
        # strict=False: a raw tab or newline inside a string is kept, not refused.
        return json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        # Line and column only: the message would quote the text, which may hold a secret.
        raise ConfigError(
            "", f"config file {name} is not valid JSON at line {exc.lineno}, column {exc.colno}"
        ) from None


def _with_secrets(
    entries: list[dict[str, Any]],
    key: str,
    field_name: str,
    problem: Callable[[ConfigError, str], None],
) -> list[dict[str, Any]]:
    """The entries of list option ``key`` whose ``field_name`` secret is long enough."""
    kept = []
    for index, entry in enumerate(entries):
        if len(entry[field_name]) < MIN_SECRET:
            problem(
                ConfigError(
                    f"{key}[{index}].{field_name}", f"must be at least {MIN_SECRET} characters"
                ),
                "left out",
            )
        else:
            kept.append(entry)
    return kept


def parse_config(
    data: Mapping[str, Any], *, set_aside: Callable[[ConfigError], None] | None = None
) -> ProxyConfig:
    """Validate an options mapping (as read from YAML/JSON) and build the :class:`ProxyConfig`.

    Missing options take their defaults (:data:`DEFAULTS`). Raises :class:`ConfigError` for the
    first problem found. With ``set_aside``, a problem that spans options (a service whose
    ``auth_type`` lacks its secret or whose URL the schema let through, an inbound backend's short
    token, a duplicate id, an unknown ``preferred_provider``, a short ``api_token``, a known
    charger with an empty password) is passed to it instead, and the config is built without
    the offending service or backend (or with no preferred provider, a generated API token, a
    charger that is refused until it has a password).
    """
    if not isinstance(data, Mapping):
        raise ConfigError("", f"the top level must be a mapping of options, got {_type_name(data)}")
    try:
        options = _SCHEMA(_prepare(data))
    except vol.Invalid as exc:
        raise _config_error(exc) from None

    def problem(error: ConfigError, consequence: str) -> None:
        if set_aside is None:
            raise error
        set_aside(ConfigError(error.key, f"{error.reason}; {consequence}"))

    version: OcppVersion = options["ocpp_version"]
    services = tuple(
        ServiceConfig(**{"version": version, **entry}) for entry in options["ocpp_services"]
    )
    inbound = tuple(InboundBackendConfig(**entry) for entry in options["inbound_backends"])
    # Routes may name any configured entry (one left out below just never answers).
    configured = {s.id for s in services} | {b.id for b in inbound}
    routes = _check_routes(
        tuple(IdTagRoute(**entry) for entry in options["id_tag_routes"]), configured, problem
    )
    home_cards = _home_cards(options["home_cards"], problem)
    # Indices of the entries left out; problems name the entries by their place in the file.
    bad_services = _check_services(services, problem)
    bad_inbound = _check_inbound(inbound, problem)
    _check_unique_ids(services, inbound, problem, bad_services, bad_inbound)
    services = tuple(s for i, s in enumerate(services) if i not in bad_services)
    inbound = tuple(b for i, b in enumerate(inbound) if i not in bad_inbound)
    ids = {s.id for s in services} | {b.id for b in inbound}

    api_token = options["api_token"]
    if api_token and len(api_token) < MIN_API_TOKEN:
        problem(
            ConfigError(
                "api_token",
                f"must be at least {MIN_API_TOKEN} characters (or empty: one is generated at "
                "first start)",
            ),
            "running without it: a generated token is used instead",
        )
        api_token = ""
    for index, entry in enumerate(options["chargers"]):
        if not entry["password"]:
            problem(
                ConfigError(
                    f"chargers[{index}].password",
                    "must not be empty: a known charger without a password is no check",
                ),
                f"running without it: charger {entry['id']!r} is refused until it has one",
            )

    options["api_tokens"] = _with_secrets(options["api_tokens"], "api_tokens", "token", problem)
    options["webhooks"] = _with_secrets(options["webhooks"], "webhooks", "secret", problem)

    preferred = options["preferred_provider"]
    if preferred and preferred not in ids:
        problem(
            ConfigError(
                "preferred_provider",
                "must be empty or the id of a configured service or inbound backend, "
                f"got {preferred!r}",
            ),
            "running without a preferred provider",
        )
        preferred = ""

    return ProxyConfig(
        **{
            **options,
            "preferred_provider": preferred,
            "api_token": api_token,
            "ocpp_services": services,
            "inbound_backends": inbound,
            "allowed_providers": tuple(options["allowed_providers"]),
            "disallowed_providers": tuple(options["disallowed_providers"]),
            "charging_schedule": tuple(
                SchedulePeriod(**period) for period in options["charging_schedule"]
            ),
            "chargers": tuple(ChargerCredential(**entry) for entry in options["chargers"]),
            "id_tag_routes": routes,
            "home_cards": home_cards,
            "api_tokens": _api_tokens(options["api_tokens"]),
            "webhooks": _webhooks(options["webhooks"]),
            "allowed_networks": tuple(options["allowed_networks"]),
            "trusted_proxies": tuple(options["trusted_proxies"]),
        }
    )


def _api_tokens(entries: Sequence[dict[str, Any]]) -> tuple[ApiTokenConfig, ...]:
    tokens = tuple(ApiTokenConfig(**entry) for entry in entries)
    names: set[str] = set()
    for index, token in enumerate(tokens):
        if token.name in names:
            raise ConfigError(f"api_tokens[{index}].name", f"duplicate name {token.name!r}")
        names.add(token.name)
    return tokens


def _webhooks(entries: Sequence[dict[str, Any]]) -> tuple[WebhookConfig, ...]:
    hooks = tuple(WebhookConfig(**{**entry, "events": tuple(entry["events"])}) for entry in entries)
    ids: set[str] = set()
    for index, hook in enumerate(hooks):
        if hook.id in ids:
            raise ConfigError(f"webhooks[{index}].id", f"duplicate id {hook.id!r}")
        ids.add(hook.id)
    return hooks


def _prepare(data: Mapping[str, Any]) -> dict[Any, Any]:
    """Drop null values (they mean "use the default") and turn tuples into lists."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return clean(data)


_Problem = Callable[[ConfigError, str], None]


def _check_services(services: Sequence[ServiceConfig], problem: _Problem) -> set[int]:
    """The indices of the services to leave out (each reported through ``problem``)."""
    bad = set()
    for index, service in enumerate(services):
        left_out = f"service {service.id!r} is left out"
        try:
            # Checked here, not in the schema: the app's schema can only say ^wss?://.+
            _ws_url(service.url)
        except vol.Invalid as exc:
            problem(ConfigError(f"ocpp_services[{index}].url", str(exc.msg)), left_out)
            bad.add(index)
            continue
        for auth_type, secret in (("basic", "password"), ("token", "token")):
            if service.auth_type == auth_type and not getattr(service, secret):
                problem(
                    ConfigError(
                        f"ocpp_services[{index}].{secret}",
                        f"required when auth_type is {auth_type}",
                    ),
                    left_out,
                )
                bad.add(index)
    return bad


def _check_inbound(inbound: Sequence[InboundBackendConfig], problem: _Problem) -> set[int]:
    """The indices of the inbound backends to leave out (each reported through ``problem``)."""
    bad = set()
    for index, backend in enumerate(inbound):
        # Checked here, not in the schema: the Supervisor cannot bound a password's length, so
        # the Home Assistant app leaves such a backend out instead of refusing to start.
        if len(backend.token) < MIN_INBOUND_TOKEN:
            problem(
                ConfigError(
                    f"inbound_backends[{index}].token",
                    f"must be at least {MIN_INBOUND_TOKEN} characters",
                ),
                f"inbound backend {backend.id!r} is left out",
            )
            bad.add(index)
    return bad


def _check_routes(
    routes: Sequence[IdTagRoute], ids: set[str], problem: _Problem
) -> tuple[IdTagRoute, ...]:
    """The routes to keep; one naming no configured backend, or a repeated match, is left out."""
    kept: list[IdTagRoute] = []
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        if route.backend not in ids:
            problem(
                ConfigError(
                    f"id_tag_routes[{index}].backend",
                    f"{route.backend!r} is not the id of a configured service or inbound backend",
                ),
                "the route is left out",
            )
        elif route.match in seen:
            problem(
                ConfigError(
                    f"id_tag_routes[{index}].match",
                    f"the same match as id_tag_routes[{seen[route.match]}], which always wins",
                ),
                "the route is left out",
            )
        else:
            seen[route.match] = index
            kept.append(route)
    return tuple(kept)


def _home_cards(entries: Sequence[Mapping[str, Any]], problem: _Problem) -> tuple[HomeCard, ...]:
    seen: set[str] = set()
    cards = []
    for index, entry in enumerate(entries):
        if entry["id"] in seen:
            # The card id itself is personal data: the error names the entry, not the card.
            problem(
                ConfigError(f"home_cards[{index}].id", "the same card as an earlier entry"),
                "the entry is left out",
            )
            continue
        seen.add(entry["id"])
        cards.append(HomeCard(entry["id"], entry["name"], entry.get("expires"), "config"))
    return tuple(cards)


def _check_unique_ids(
    services: Sequence[ServiceConfig],
    inbound: Sequence[InboundBackendConfig],
    problem: _Problem,
    bad_services: set[int],
    bad_inbound: set[int],
) -> None:
    """Report each id used twice; the later entry joins the ones left out."""
    seen: dict[str, str] = {}
    entries = [("ocpp_services", i, s.id, bad_services) for i, s in enumerate(services)]
    entries += [("inbound_backends", i, b.id, bad_inbound) for i, b in enumerate(inbound)]
    for option, index, ident, bad in entries:
        if index in bad:
            continue
        key = f"{option}[{index}].id"
        if ident in seen:
            problem(
                ConfigError(key, f"duplicate id {ident!r}, already used by {seen[ident]}"),
                "this entry is left out",
            )
            bad.add(index)
        else:
            seen[ident] = key


def _config_error(exc: vol.Invalid) -> ConfigError:
    """Turn voluptuous's (first) error into a ConfigError with a readable path."""
    while isinstance(exc, vol.MultipleInvalid):
        exc = exc.errors[0]
    reason = _REASONS.get(exc.error_message, exc.error_message)
    return ConfigError(_format_path(exc.path), reason)


def _format_path(path: Sequence[Any]) -> str:
    """Format a voluptuous path: ``["ocpp_services", 1, "url"]`` -> ``ocpp_services[1].url``."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _yaml_reason(name: str, exc: yaml.YAMLError) -> str:
    # Built from the parts rather than str(exc): that would quote the offending source line,
    # which may hold a password.
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "could not be parsed"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} started at line {context_mark.line + 1})"
    return f"config file {name} is not valid YAML{where}: {problem}"


def _to_options(config: ProxyConfig) -> dict[str, Any]:
    """Return the options mapping that parses back to ``config`` (has secrets: never log it)."""
    options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    options["ocpp_services"] = [_entry_to_options(s) for s in config.ocpp_services]
    options["inbound_backends"] = [_entry_to_options(b) for b in config.inbound_backends]
    options["allowed_providers"] = list(config.allowed_providers)
    options["disallowed_providers"] = list(config.disallowed_providers)
    options["charging_schedule"] = [dataclasses.asdict(p) for p in config.charging_schedule]
    options["chargers"] = [dataclasses.asdict(c) for c in config.chargers]
    options["id_tag_routes"] = [dataclasses.asdict(r) for r in config.id_tag_routes]
    options["home_cards"] = [
        {"id": c.id_tag, "name": c.name, "expires": _iso(c.expires_at)} for c in config.home_cards
    ]
    for key in ("authorization", "offline_authorization"):
        options[key] = str(options[key])
    options["api_tokens"] = [dataclasses.asdict(t) for t in config.api_tokens]
    options["webhooks"] = [
        {**dataclasses.asdict(w), "events": list(w.events)} for w in config.webhooks
    ]
    options["allowed_networks"] = list(config.allowed_networks)
    options["trusted_proxies"] = list(config.trusted_proxies)
    options["ocpp_version"] = str(config.ocpp_version)
    return options


def _entry_to_options(entry: ServiceConfig | InboundBackendConfig) -> dict[str, Any]:
    options = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    if options.get("version") is not None:
        options["version"] = str(options["version"])
    else:
        options.pop("version", None)  # an inbound backend of the charger's version
    options["share_sessions"] = str(options["share_sessions"])
    return options


def _iso(at: float | None) -> str | None:
    # Config expiries are local midnights (see _expiry): the local date gives them back.
    return None if at is None else datetime.fromtimestamp(at).date().isoformat()
