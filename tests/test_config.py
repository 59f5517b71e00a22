from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ocpp_proxy.config import (
    DEFAULTS,
    ConfigError,
    InboundBackendConfig,
    ProxyConfig,
    ServiceConfig,
    load_config,
    parse_config,
)
from ocpp_proxy.protocol.versions import OcppVersion

SECRET = "hunter2-Sup3rSecret"

FULL_YAML = """\
ocpp_version: 2.0.1
auto_detect_ocpp_version: false
charge_point_id: Garage-Wallbox
preferred_provider: evcloud
response_timeout: 15
ocpp_services:
  - id: evcloud
    url: wss://csms.example.com/ocpp/{charge_point_id}
    auth_type: basic
    username: wallbox
    password: "@SECRET@"
    ca_file: /etc/ssl/evcloud.pem
    rate_per_kwh: 0.29
    currency: NOK
    allow_config_changes: true
  - id: legacy.csms
    url: ws://10.0.0.5:9000/
    version: 1.6
    auth_type: token
    token: "@SECRET@"
    enabled: false
inbound_backends:
  - id: ha_energy
    token: "@SECRET@"
    rate_per_kwh: 0
  - id: backup
    token: another-long-token
    enabled: false
    currency: SEK
    allow_config_changes: true
allow_shared_charging: false
rate_limit_seconds: 60
presence_sensor: binary_sensor.car_home
override_input_boolean: input_boolean.charge_now
allowed_providers: [evcloud, ha_energy]
disallowed_providers: [backup]
max_frame_bytes: 65536
ping_interval: 20
drain_timeout: 0
heartbeat_interval: 60
host: 127.0.0.1
port: 8887
data_dir: /data
log_level: debug
""".replace("@SECRET@", SECRET)

FULL_CONFIG = ProxyConfig(
    ocpp_version=OcppVersion.V201,
    auto_detect_ocpp_version=False,
    charge_point_id="Garage-Wallbox",
    preferred_provider="evcloud",
    response_timeout=15.0,
    ocpp_services=(
        ServiceConfig(
            id="evcloud",
            url="wss://csms.example.com/ocpp/{charge_point_id}",
            version=OcppVersion.V201,
            auth_type="basic",
            username="wallbox",
            password=SECRET,
            ca_file="/etc/ssl/evcloud.pem",
            rate_per_kwh=0.29,
            currency="NOK",
            allow_config_changes=True,
        ),
        ServiceConfig(
            id="legacy.csms",
            url="ws://10.0.0.5:9000/",
            version=OcppVersion.V16,
            auth_type="token",
            token=SECRET,
            enabled=False,
        ),
    ),
    inbound_backends=(
        InboundBackendConfig(id="ha_energy", token=SECRET, rate_per_kwh=0.0),
        InboundBackendConfig(
            id="backup",
            token="another-long-token",
            enabled=False,
            currency="SEK",
            allow_config_changes=True,
        ),
    ),
    allow_shared_charging=False,
    rate_limit_seconds=60,
    presence_sensor="binary_sensor.car_home",
    override_input_boolean="input_boolean.charge_now",
    allowed_providers=("evcloud", "ha_energy"),
    disallowed_providers=("backup",),
    max_frame_bytes=65536,
    ping_interval=20.0,
    drain_timeout=0.0,
    heartbeat_interval=60,
    host="127.0.0.1",
    port=8887,
    data_dir="/data",
    log_level="DEBUG",
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def service(**overrides: Any) -> dict[str, Any]:
    return {"id": "svc", "url": "wss://csms.example.com/ocpp", **overrides}


def inbound(**overrides: Any) -> dict[str, Any]:
    return {"id": "in", "token": "long-enough-token", **overrides}


# --- defaults --------------------------------------------------------------------------------


def test_no_path_gives_defaults() -> None:
    config = load_config(None)
    assert config == ProxyConfig()
    assert config.ocpp_version is OcppVersion.V16
    assert config.charge_point_id == "CP_1"
    assert config.response_timeout == 10.0
    assert config.max_frame_bytes == 1048576
    assert config.port == 9000
    assert config.log_level == "INFO"
    assert config.ocpp_services == ()
    assert config.inbound_backends == ()
    assert config.backend_ids == ()


def test_defaults_dict_matches_dataclass_defaults() -> None:
    assert parse_config(DEFAULTS) == ProxyConfig()
    assert parse_config({}) == ProxyConfig()
    assert set(DEFAULTS) == {f for f in ProxyConfig.__dataclass_fields__}
    # the HA app writes these as JSON, so they must be plain JSON values
    assert json.loads(json.dumps(DEFAULTS)) == DEFAULTS


def test_parsing_does_not_mutate_defaults_or_input() -> None:
    before = copy.deepcopy(DEFAULTS)
    data = {"ocpp_services": [service()], "log_level": "debug"}
    data_before = copy.deepcopy(data)
    parse_config(data)
    assert before == DEFAULTS
    assert data == data_before


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "empty.yaml", "")) == ProxyConfig()


def test_null_values_take_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        "ocpp_services:\ninbound_backends:\npresence_sensor:\ncharge_point_id:\n",
    )
    assert load_config(path) == ProxyConfig()


# --- round trips -----------------------------------------------------------------------------


def test_full_yaml_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "config.yaml", FULL_YAML))
    assert config == FULL_CONFIG
    assert isinstance(config.ocpp_services, tuple)
    assert isinstance(config.allowed_providers, tuple)
    assert isinstance(config.response_timeout, float)
    assert isinstance(config.ocpp_services[0].version, OcppVersion)
    assert config.backend_ids == ("evcloud", "ha_energy")


def test_json_options_file(tmp_path: Path) -> None:
    options = {
        "ocpp_version": "1.6",
        "charge_point_id": "CP 7",
        "ocpp_services": [
            {"id": "a", "url": "ws://a.example/{charge_point_id}"},
            {"id": "b", "url": "wss://b.example/ocpp", "version": "2.1", "enabled": True},
        ],
        "inbound_backends": [{"id": "c", "token": "12345678"}],
        "preferred_provider": "c",
        "response_timeout": 2.5,
        "port": 19000,
    }
    config = load_config(write(tmp_path, "options.json", json.dumps(options)))
    assert config == ProxyConfig(
        charge_point_id="CP 7",
        ocpp_services=(
            ServiceConfig(id="a", url="ws://a.example/{charge_point_id}", version=OcppVersion.V16),
            ServiceConfig(id="b", url="wss://b.example/ocpp", version=OcppVersion.V21),
        ),
        inbound_backends=(InboundBackendConfig(id="c", token="12345678"),),
        preferred_provider="c",
        response_timeout=2.5,
        port=19000,
    )
    assert config.backend_ids == ("a", "b", "c")


def test_accepts_pathlib_and_str_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "port: 1234\n")
    assert load_config(path).port == 1234
    assert load_config(str(path)).port == 1234


def test_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"port": 1}).encode())
    assert load_config(path).port == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.6", OcppVersion.V16),
        (1.6, OcppVersion.V16),
        ("2.0.1", OcppVersion.V201),
        ("2.1", OcppVersion.V21),
        (2.1, OcppVersion.V21),
    ],
)
def test_ocpp_version_values(value: object, expected: OcppVersion) -> None:
    config = parse_config({"ocpp_version": value, "ocpp_services": [service()]})
    assert config.ocpp_version is expected
    assert config.ocpp_services[0].version is expected


def test_service_version_overrides_top_level() -> None:
    config = parse_config({"ocpp_version": "2.0.1", "ocpp_services": [service(version=1.6)]})
    assert config.ocpp_services[0].version is OcppVersion.V16


def test_service_defaults() -> None:
    svc = parse_config({"ocpp_services": [service()]}).ocpp_services[0]
    assert svc == ServiceConfig(id="svc", url="wss://csms.example.com/ocpp")
    assert (svc.auth_type, svc.username, svc.password, svc.token) == ("none", "", "", "")
    assert svc.enabled is True
    assert svc.allow_config_changes is False
    assert (svc.rate_per_kwh, svc.currency, svc.ca_file) == (0.0, "EUR", "")


@pytest.mark.parametrize("level", ["debug", "Warning", "CRITICAL", "error", "info"])
def test_log_level_case_insensitive(level: str) -> None:
    assert parse_config({"log_level": level}).log_level == level.upper()


def test_backend_ids_order_and_enabled_only() -> None:
    config = parse_config(
        {
            "ocpp_services": [service(id="s1"), service(id="s2", enabled=False), service(id="s3")],
            "inbound_backends": [inbound(id="i1", enabled=False), inbound(id="i2")],
        }
    )
    assert config.backend_ids == ("s1", "s3", "i2")


def test_dataclasses_are_frozen() -> None:
    config = parse_config({"ocpp_services": [service()]})
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.ocpp_services[0].url = "ws://x"  # type: ignore[misc]


def test_with_overrides() -> None:
    config = parse_config({"ocpp_services": [service()], "port": 9000})
    changed = config.with_overrides(port=9100, log_level="debug", host="::")
    assert (changed.port, changed.log_level, changed.host) == (9100, "DEBUG", "::")
    assert changed.ocpp_services == config.ocpp_services
    assert config.port == 9000
    assert config.with_overrides() == config


def test_with_overrides_validates() -> None:
    with pytest.raises(ConfigError) as info:
        ProxyConfig().with_overrides(port=70000)
    assert info.value.key == "port"
    with pytest.raises(TypeError):
        ProxyConfig().with_overrides(no_such_field=1)


# --- validation errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        # unknown keys, at every level
        ({"prot": 1}, "prot", "unknown option"),
        ({"ocpp_services": [service(pasword="x")]}, "ocpp_services[0].pasword", "unknown option"),
        (
            {"inbound_backends": [inbound(url="ws://x")]},
            "inbound_backends[0].url",
            "unknown option",
        ),
        # service id and url
        ({"ocpp_services": [{"url": "ws://x"}]}, "ocpp_services[0].id", "required"),
        ({"ocpp_services": [{"id": "a"}]}, "ocpp_services[0].url", "required"),
        ({"ocpp_services": [service(id="")]}, "ocpp_services[0].id", "must be 1-64 characters"),
        ({"ocpp_services": [service(id="a b")]}, "ocpp_services[0].id", "got 'a b'"),
        ({"ocpp_services": [service(id="x" * 65)]}, "ocpp_services[0].id", "1-64"),
        ({"ocpp_services": [service(id=5)]}, "ocpp_services[0].id", "expected a string"),
        (
            {"ocpp_services": [service(), service(id="b", url="http://x")]},
            "ocpp_services[1].url",
            "expected a ws:// or wss:// URL, got 'http://x'",
        ),
        ({"ocpp_services": [service(url="wss://")]}, "ocpp_services[0].url", "ws:// or wss://"),
        ({"ocpp_services": [service(url="csms")]}, "ocpp_services[0].url", "ws:// or wss://"),
        (
            {"ocpp_services": [service(url="ws://h/{chargepoint}")]},
            "ocpp_services[0].url",
            "unknown placeholder {chargepoint}",
        ),
        # service fields
        ({"ocpp_services": [service(version="1.5")]}, "ocpp_services[0].version", "one of"),
        ({"ocpp_services": [service(auth_type="digest")]}, "ocpp_services[0].auth_type", "one of"),
        (
            {"ocpp_services": [service(auth_type="basic")]},
            "ocpp_services[0].password",
            "required when auth_type is basic",
        ),
        (
            {"ocpp_services": [service(auth_type="basic", password="")]},
            "ocpp_services[0].password",
            "required when auth_type is basic",
        ),
        (
            {"ocpp_services": [service(auth_type="token", password="p")]},
            "ocpp_services[0].token",
            "required when auth_type is token",
        ),
        ({"ocpp_services": [service(enabled="yes")]}, "ocpp_services[0].enabled", "true or false"),
        ({"ocpp_services": [service(rate_per_kwh=-0.1)]}, "ocpp_services[0].rate_per_kwh", ">= 0"),
        (
            {"ocpp_services": [service(currency=1)]},
            "ocpp_services[0].currency",
            "expected a string",
        ),
        (
            {"ocpp_services": [service(allow_config_changes=1)]},
            "ocpp_services[0].allow_config_changes",
            "true or false",
        ),
        ({"ocpp_services": {"id": "a"}}, "ocpp_services", "expected a list"),
        ({"ocpp_services": ["a"]}, "ocpp_services[0]", "expected a mapping"),
        # inbound backends
        ({"inbound_backends": [{"id": "a"}]}, "inbound_backends[0].token", "required"),
        (
            {"inbound_backends": [inbound(token="short")]},
            "inbound_backends[0].token",
            "must be at least 8 characters",
        ),
        ({"inbound_backends": [inbound(id="a/b")]}, "inbound_backends[0].id", "1-64"),
        (
            {"inbound_backends": [inbound(rate_per_kwh="1")]},
            "inbound_backends[0].rate_per_kwh",
            "number",
        ),
        # unique ids across both lists: the later one is named
        (
            {"ocpp_services": [service(id="a"), service(id="a")]},
            "ocpp_services[1].id",
            "duplicate id 'a', already used by ocpp_services[0].id",
        ),
        (
            {"ocpp_services": [service(id="a")], "inbound_backends": [inbound(), inbound(id="a")]},
            "inbound_backends[1].id",
            "duplicate id 'a', already used by ocpp_services[0].id",
        ),
        # top level
        ({"ocpp_version": "2.0"}, "ocpp_version", "must be one of 1.6, 2.0.1, 2.1, got '2.0'"),
        ({"ocpp_version": 2}, "ocpp_version", "must be one of"),
        ({"auto_detect_ocpp_version": "true"}, "auto_detect_ocpp_version", "true or false"),
        ({"charge_point_id": ""}, "charge_point_id", "1-48 printable characters"),
        ({"charge_point_id": "a/b"}, "charge_point_id", "without '/'"),
        ({"charge_point_id": "x" * 49}, "charge_point_id", "longer than 48"),
        ({"charge_point_id": ".."}, "charge_point_id", "not '.' or '..'"),
        ({"charge_point_id": "CP\n1"}, "charge_point_id", "not printable"),
        ({"chargers": [{"id": "..", "password": "pw"}]}, "chargers[0].id", "'..'"),
        ({"chargers": [{"id": "CP_1", "password": ""}]}, "chargers[0].password", "not be empty"),
        ({"api_token": "x"}, "api_token", "at least 16 characters"),
        ({"api_token": "fifteen-chars-x"}, "api_token", "at least 16 characters"),
        ({"charge_point_id": 1234}, "charge_point_id", "expected a string"),
        (
            {"preferred_provider": "nope"},
            "preferred_provider",
            "must be empty or the id of a configured service or inbound backend, got 'nope'",
        ),
        ({"response_timeout": 0}, "response_timeout", "must be a number >= 0.1, got 0"),
        ({"response_timeout": 0.09}, "response_timeout", ">= 0.1"),
        ({"response_timeout": -1.5}, "response_timeout", ">= 0.1"),
        ({"response_timeout": "10"}, "response_timeout", "expected a number"),
        ({"response_timeout": True}, "response_timeout", "expected a number"),
        ({"response_timeout": float("inf")}, "response_timeout", ">= 0.1"),
        ({"rate_limit_seconds": -1}, "rate_limit_seconds", "must be an integer >= 0, got -1"),
        ({"rate_limit_seconds": 1.5}, "rate_limit_seconds", "expected an integer"),
        ({"max_frame_bytes": 1023}, "max_frame_bytes", "must be an integer >= 1024, got 1023"),
        ({"ping_interval": 0}, "ping_interval", ">= 0.1"),
        ({"mqtt_discovery_prefix": ""}, "mqtt_discovery_prefix", "must not be empty"),
        ({"ingress_port": -1}, "ingress_port", "from 0 to 65535"),
        ({"drain_timeout": -0.1}, "drain_timeout", ">= 0"),
        ({"heartbeat_interval": 0}, "heartbeat_interval", "must be an integer >= 1, got 0"),
        ({"port": 0}, "port", "must be an integer from 1 to 65535, got 0"),
        ({"port": 65536}, "port", "from 1 to 65535"),
        ({"port": True}, "port", "expected an integer"),
        ({"port": "9000"}, "port", "expected an integer"),
        ({"log_level": "verbose"}, "log_level", "must be one of DEBUG, INFO"),
        ({"allowed_providers": "a"}, "allowed_providers", "expected a list"),
        ({"disallowed_providers": ["a", 2]}, "disallowed_providers[1]", "expected a string"),
        ({"host": 1}, "host", "expected a string"),
        ({"data_dir": ["x"]}, "data_dir", "expected a string"),
        ({"presence_sensor": False}, "presence_sensor", "expected a string"),
    ],
)
def test_validation_errors(data: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value) == f"{key}: {info.value.reason}"


def test_error_str_format() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"ocpp_services": [service(url="http://x")]})
    assert str(info.value) == "ocpp_services[0].url: expected a ws:// or wss:// URL, got 'http://x'"


def test_first_error_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"port": 0, "log_level": "nope"})
    assert info.value.key == "port"


def test_preferred_provider_may_name_inbound_or_disabled_backend() -> None:
    config = parse_config(
        {
            "ocpp_services": [service(id="s", enabled=False)],
            "inbound_backends": [inbound(id="i")],
            "preferred_provider": "s",
        }
    )
    assert config.preferred_provider == "s"
    assert parse_config({"inbound_backends": [inbound(id="i")], "preferred_provider": "i"})


def test_error_from_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "ocpp_services:\n  - id: a\n    url: http://x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "ocpp_services[0].url"


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"ocpp_services": [service(password=SECRET, bogus=1)]},
        {"ocpp_services": [service(auth_type="basic", password=SECRET, token=SECRET, id="a b")]},
        {"ocpp_services": [service(url=f"http://user:{SECRET}@host/ocpp", password=SECRET)]},
        {"ocpp_services": [service(url=f"ws://user:{SECRET}@host/{{x}}")]},
        {"ocpp_services": [service(password=12345678)]},
        {"ocpp_services": [service(token=[SECRET])]},
        {"inbound_backends": [inbound(token=SECRET[:7])]},
        {"inbound_backends": [inbound(token=SECRET), inbound(token=SECRET)]},
        {"inbound_backends": [inbound(token=SECRET, enabled="no")]},
        {"inbound_backends": [inbound(token=SECRET)], "charge_point_id": ""},
    ],
)
def test_errors_never_show_secrets(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    text = f"{info.value} {info.value!r} {info.value.args}"
    assert SECRET not in text
    assert SECRET[:7] not in text
    assert "12345678" not in text


def test_yaml_error_does_not_quote_the_source_line(tmp_path: Path) -> None:
    text = f'ocpp_services:\n  - id: a\n    password: "{SECRET}\n    url: ws://x\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "c.yaml", text))
    assert SECRET not in str(info.value)
    assert "started at line 3" in info.value.reason


def test_repr_hides_secrets(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "config.yaml", FULL_YAML))
    assert SECRET not in repr(config)
    assert "evcloud" in repr(config)


# --- file problems ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == ""
    assert "not found" in info.value.reason
    assert str(path) in info.value.reason
    assert str(info.value) == info.value.reason


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.key == ""
    assert str(tmp_path) in info.value.reason


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "port: 9000\nhost: [unclosed\nlog_level: INFO\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == ""
    assert str(path) in info.value.reason
    assert "not valid YAML" in info.value.reason
    assert "line " in info.value.reason


def test_broken_json_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "options.json", '{\n  "port": 9000,\n  "host": "x"\n  "a": 1\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "line 4" in info.value.reason


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"host: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == ""
    assert "UTF-8" in info.value.reason


@pytest.mark.parametrize(
    ("text", "got"), [("- a\n- b\n", "a list"), ("just text\n", "a string"), ("42\n", "a number")]
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "c.yaml", text))
    assert info.value.key == ""
    assert "must be a mapping" in info.value.reason
    assert got in info.value.reason


def test_parse_config_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(["port", 1])  # type: ignore[arg-type]
    assert info.value.key == ""


# -- webhooks, API tokens, networks ------------------------------------------------------------

_HOOK = {"id": "crm", "url": "https://crm.example/hook", "secret": "s" * 16}


@pytest.mark.parametrize(
    ("options", "key", "reason"),
    [
        ({"webhooks": [{**_HOOK, "url": "ws://crm"}]}, "webhooks[0].url", "http:// or https://"),
        ({"webhooks": [{**_HOOK, "secret": "short"}]}, "webhooks[0].secret", "16 characters"),
        ({"webhooks": [{**_HOOK, "events": ["nope"]}]}, "webhooks[0].events[0]", "unknown event"),
        ({"webhooks": [_HOOK, _HOOK]}, "webhooks[1].id", "duplicate"),
        ({"webhooks": [{**_HOOK, "max_queue": 0}]}, "webhooks[0].max_queue", ">= 1"),
        (
            {"api_tokens": [{"name": "kiosk", "token": "x" * 16, "role": "root"}]},
            "api_tokens[0].role",
            "read, control, admin",
        ),
        ({"api_tokens": [{"name": "kiosk", "token": "short"}]}, "api_tokens[0].token", "16"),
        (
            {"api_tokens": [{"name": "k", "token": "x" * 16}, {"name": "k", "token": "y" * 16}]},
            "api_tokens[1].name",
            "duplicate",
        ),
        ({"allowed_networks": ["192.168.1.0/33"]}, "allowed_networks[0]", "CIDR"),
        ({"lan_only": "yes"}, "lan_only", "true or false"),
    ],
)
def test_new_access_and_webhook_options_name_the_key(
    options: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(options)
    assert err.value.key == key and reason in err.value.reason
    assert "s" * 16 not in str(err.value) and "x" * 16 not in str(err.value)


def test_webhooks_and_tokens_load_and_survive_overrides_without_showing_secrets() -> None:
    config = parse_config(
        {
            "webhooks": [{**_HOOK, "events": ["session.stopped"]}],
            "api_tokens": [{"name": "kiosk", "token": "t" * 16}],
            "allowed_networks": ["192.168.1.7/24"],
            "trusted_proxies": ["::1"],
        }
    )
    assert config.webhooks[0].events == ("session.stopped",)
    assert config.webhooks[0].max_queue == 10000 and config.webhooks[0].timeout == 10.0
    assert config.api_tokens[0].role == "read"
    assert config.allowed_networks == ("192.168.1.0/24",)
    assert config.trusted_proxies == ("::1/128",)
    assert config.with_overrides(port=9001).webhooks == config.webhooks
    assert "s" * 16 not in repr(config) and "t" * 16 not in repr(config)
