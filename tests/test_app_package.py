"""The Home Assistant app package: config.yaml, its schema, translations, docs, run.sh, Dockerfile.

The Supervisor's option validation is rebuilt here with the same voluptuous calls as its
``supervisor/addons/options.py`` (the value it writes to ``/data/options.json`` is what the
proxy then reads), so that a default the Supervisor would refuse, an option the proxy reads but
the app does not offer, or a value the Supervisor lets through and the proxy refuses at start
(exit 2, a restart loop) fails here.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml

from ocpp_proxy.config import DEFAULTS, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
#: Options run.sh sets on the command line instead of the app's options.
SET_BY_RUN_SH = {"host", "port", "ingress_port", "data_dir"}
BASE_IMAGE = "ghcr.io/home-assistant/base-python:3.13-alpine3.24"

# The element syntax of the Supervisor's schema (its RE_SCHEMA_ELEMENT, without device()).
_ELEMENT = re.compile(
    r"^(?:(?P<plain>bool|email|url|port)"
    r"|(?P<sized>str|password)(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|(?P<num>int)(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?"
    r"|(?P<fnum>float)(?:\((?P<f_min>[\d.]+)?,(?P<f_max>[\d.]+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\))\??$"
)


class Refused(Exception):
    """The Supervisor refuses the value (the app's options cannot be saved, it does not start)."""


def supervisor_value(schema: str, value: Any) -> Any:
    """The value the Supervisor writes for ``value`` under element ``schema``, or Refused.

    As its ``_single_validate``: str/password check the value against ``str(value)`` and then
    apply vol.Range to the *string* (so any bound refuses every string); int and float coerce,
    then check an inclusive range; match runs ``re.match`` on ``str(value)``; list checks
    ``str(value)`` against the choices.
    """
    m = _ELEMENT.match(schema)
    assert m, f"{schema!r} is not a Supervisor schema type"
    bounds: dict[str, float] = {}
    for group in ("s_min", "s_max", "i_min", "i_max", "f_min", "f_max"):
        if m[group]:
            bounds[group[2:]] = float(m[group])
    try:
        if value is None:
            raise vol.Invalid("missing required option")
        if m["sized"]:
            return vol.All(str(value), vol.Range(**bounds))(value)
        if m["num"]:
            return vol.All(vol.Coerce(int), vol.Range(**bounds))(value)
        if m["fnum"]:
            return vol.All(vol.Coerce(float), vol.Range(**bounds))(value)
        if m["plain"] == "bool":
            return vol.Boolean()(value)
        if m["plain"] == "email":
            return vol.Email()(value)
        if m["plain"] == "url":
            return vol.Url()(value)
        if m["plain"] == "port":
            return vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))(value)
        if m["match"] is not None:
            return vol.Match(m["match"])(str(value))
        return vol.In(m["list"].split("|"))(str(value))
    except vol.Invalid as err:
        raise Refused(f"{schema}: {value!r}: {err}") from None


def supervisor_options(schema: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options.json the Supervisor writes for ``options`` (its defaults merged in), or Refused.

    Unknown keys are dropped (the Supervisor logs a warning); missing ones must be optional
    (``?``), or have a default at the top level.
    """
    written: dict[str, Any] = {}
    for key, value in options.items():
        if key not in schema:
            continue
        element = schema[key]
        if isinstance(element, list):
            if not isinstance(value, list):
                raise Refused(f"{key}: not a list")
            if isinstance(element[0], dict):
                written[key] = [supervisor_options(element[0], item) for item in value]
            else:
                written[key] = [supervisor_value(element[0], item) for item in value]
        else:
            written[key] = supervisor_value(element, value)
    for key, element in schema.items():
        inner = element[0] if isinstance(element, list) and element else element
        if key not in written and not (isinstance(inner, str) and inner.endswith("?")):
            raise Refused(f"missing option {key}")
    return written


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


@functools.cache
def _app_config() -> dict[str, Any]:
    return load("config.yaml")


def app_options(**changes: Any) -> dict[str, Any]:
    """The options.json the Supervisor writes: the app's defaults with the user's changes."""
    config = copy.deepcopy(_app_config())
    return supervisor_options(config["schema"], {**config["options"], **changes})


def test_config_yaml_has_the_required_keys_and_is_the_only_one() -> None:
    config = load("config.yaml")
    for key in ("name", "version", "slug", "description", "arch", "url"):
        assert config[key], key
    assert config["arch"] == ["aarch64", "amd64"]
    assert config["init"] is False
    assert config["startup"] == "services"
    # Keys that only repeat the Supervisor's defaults are left out.
    assert "boot" not in config and "backup" not in config
    assert config["stage"] == "experimental"
    # Time for the drain and the final SQLite flush before Docker kills the process.
    assert config["timeout"] == 30
    assert "image" not in config, "no image is published yet: the Supervisor would pull nothing"
    assert config["homeassistant_api"] is True
    assert config["services"] == ["mqtt:want"]
    assert config["ports"] == {"9000/tcp": 9000} and "9000/tcp" in config["ports_description"]
    assert config["watchdog"] == "tcp://[HOST]:[PORT:9000]"
    # Ingress has its own plain-HTTP listener, never mapped to the host, that run.sh opens.
    assert (config["ingress"], config["ingress_port"]) == (True, 8099)
    assert "8099/tcp" not in config["ports"]
    run_sh = (ROOT / "run.sh").read_text(encoding="utf-8")
    assert "--ingress-port 8099" in run_sh and "--keep-running" in run_sh
    assert config["panel_icon"] == "mdi:ev-station"
    others = [
        p
        for p in ROOT.rglob("config.y*ml")
        if p != ROOT / "config.yaml" and not {".git", ".venv"} & set(p.parts)
    ]
    assert others == [], "the Supervisor would take these for apps"
    repository = load("repository.yaml")
    assert {"name", "url", "maintainer"} <= set(repository)


def test_version_matches_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert load("config.yaml")["version"] == pyproject["project"]["version"]


def test_schema_covers_every_option_the_proxy_reads() -> None:
    config = load("config.yaml")
    assert set(config["schema"]) == set(DEFAULTS) - SET_BY_RUN_SH
    assert set(config["options"]) <= set(config["schema"])
    # An option missing from `options` must be optional in the schema (no default there).
    for key in set(config["schema"]) - set(config["options"]):
        assert str(config["schema"][key]).endswith("?"), key
    for key in ("ha_token", "mqtt_password"):
        assert config["schema"][key] == "password", key
    # Secrets stay masked in the options form. The Supervisor cannot bound a password's length
    # (a bounded str/password refuses every string there), so the proxy's loader refuses a
    # short API token or an empty charger password by name (issue 16); an absent api_token
    # is generated at first start.
    assert config["schema"]["api_token"] == "password?"
    assert "api_token" not in config["options"]
    assert config["schema"]["ocpp_services"][0]["password"].startswith("password")
    assert config["schema"]["inbound_backends"][0]["token"].startswith("password")
    assert config["schema"]["chargers"][0]["password"] == "password"


@pytest.mark.parametrize(
    ("charge_point_id", "valid"),
    [
        ("CP_1", True),
        ("Garage Wallbox", True),
        ("x" * 48, True),
        ("x" * 49, False),
        ("..", False),
        (".", False),
        ("a/b", False),
        ("CP\n1", False),
        ("...", True),
    ],
)
def test_the_options_schema_refuses_the_charge_point_ids_the_proxy_refuses(
    charge_point_id: str, valid: bool
) -> None:
    element = load("config.yaml")["schema"]["chargers"][0]["id"]
    try:
        supervisor_value(element, charge_point_id)
    except Refused:
        accepted = False
    else:
        accepted = True
    assert accepted is valid
    options = {"chargers": [{"id": charge_point_id, "password": "pw"}]}
    try:
        parse_config(options)
    except ConfigError:
        loaded = False
    else:
        loaded = True
    assert loaded is valid


def test_options_validate_and_load_with_the_proxys_defaults() -> None:
    config = load("config.yaml")
    for key, value in config["options"].items():
        assert value == DEFAULTS[key], key
    # What the Supervisor writes to /data/options.json is what the proxy reads as --config.
    written = json.loads(json.dumps(app_options()))
    assert parse_config(written) == parse_config(DEFAULTS)


def test_a_full_set_of_options_passes_both_the_schema_and_the_proxy() -> None:
    config = load("config.yaml")
    options = {
        **config["options"],
        "ocpp_services": [
            {
                "id": "energy_co",
                "url": "wss://csms.example/ocpp/{charge_point_id}",
                "version": "2.0.1",
                "auth_type": "basic",
                "password": "secret",
                "rate_per_kwh": 0.3,
            }
        ],
        "inbound_backends": [{"id": "fleet", "token": "a-long-secret"}],
        "chargers": [{"id": "CP_1", "password": "charger-secret"}],
        "charging_schedule": [{"start": "22:00", "end": "06:00", "max_current_a": 16}],
        "allowed_providers": ["energy_co"],
        "preferred_provider": "energy_co",
        "max_current_a": 10.0,
        "api_tokens": [{"name": "kiosk", "token": "a-read-only-token-123", "role": "read"}],
        "webhooks": [
            {
                "id": "crm",
                "url": "https://crm.example/hooks/ocpp",
                "secret": "a-shared-secret-123",
                "events": ["session.stopped", "backend.down"],
            }
        ],
        "allowed_networks": ["192.168.1.0/24", "fd00::/8"],
        "lan_only": True,
        "trusted_proxies": ["192.168.1.2"],
        "ha_url": "http://homeassistant.local:8123",
        "mqtt_port": 1884,
        "log_level": "DEBUG",
    }
    parsed = parse_config(supervisor_options(config["schema"], options))
    assert parsed.ocpp_services[0].version.value == "2.0.1"
    assert parsed.charging_schedule[0].max_current_a == 16
    assert parsed.webhooks[0].events == ("session.stopped", "backend.down")
    assert parsed.api_tokens[0].role == "read"


def test_every_option_is_translated_and_documented() -> None:
    schema = load("config.yaml")["schema"]
    translations = load("translations/en.yaml")["configuration"]
    docs = (ROOT / "DOCS.md").read_text(encoding="utf-8")
    for key in schema:
        assert translations[key]["name"] and translations[key]["description"], key
        assert f"`{key}`" in docs, f"{key} is not in DOCS.md"
    assert set(translations) == set(schema)
    # The options form names every field of the list options.
    for key, element in schema.items():
        if isinstance(element, list) and isinstance(element[0], dict):
            fields = translations[key]["fields"]
            assert set(fields) == set(element[0]), key
            for name, text in fields.items():
                assert text["name"] and text["description"], f"{key}.{name}"


def test_images_are_pngs_of_the_right_shape() -> None:
    for name in ("icon.png", "logo.png"):
        data = (ROOT / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    icon = (ROOT / "icon.png").read_bytes()
    width, height = int.from_bytes(icon[16:20]), int.from_bytes(icon[20:24])
    assert width == height == 256
    for name in ("CHANGELOG.md", "apparmor.txt"):
        assert (ROOT / name).read_text(encoding="utf-8").strip(), name
    assert "profile ocpp_proxy" in (ROOT / "apparmor.txt").read_text(encoding="utf-8")


def test_dockerfile_builds_from_the_multi_arch_base_and_the_repository() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"ARG BUILD_FROM={BASE_IMAGE}" in dockerfile
    # Wheels only, from PyPI: a missing wheel fails the build instead of compiling on a Pi.
    assert "--only-binary=:all:" in dockerfile
    assert "--find-links" not in dockerfile and "--extra-index-url" not in dockerfile
    # A stuck event loop fails the health check (the TCP watchdog only sees an open port).
    healthcheck = re.search(r"^HEALTHCHECK .*?\n(?:\s+CMD .*)", dockerfile, re.MULTILINE)
    assert healthcheck and "http://127.0.0.1:8099/health" in healthcheck.group(0)
    # The image's labels live in the Dockerfile, which every Supervisor builds from.
    for label in (
        "io.hass.type",
        "io.hass.name",
        "io.hass.version",
        "org.opencontainers.image.source",
    ):
        assert label in dockerfile, label
    assert "FROM $BUILD_FROM" in dockerfile
    copied = re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE)
    sources = [src for line in copied for src in line.split()]
    for source in sources:
        assert (ROOT / source).exists(), f"{source} is not in the build context"
    assert {"pyproject.toml", "README.md", "ocpp_proxy/", "run.sh"} <= set(sources)
    # pip installs the context's copy ("."), not a package from an index.
    assert re.search(r"pip3? install\b(?:[^\n]|\\\n)*?\s\.(?:\s|$)", dockerfile)
    assert 'CMD ["/run.sh"]' in dockerfile
    build = load("build.yaml")
    assert build == {"build_from": {"aarch64": BASE_IMAGE, "amd64": BASE_IMAGE}}
    comment = (ROOT / "build.yaml").read_text(encoding="utf-8")
    assert "older than 2026.04" in comment and "deprecated" in comment


def test_release_workflow_builds_with_home_assistants_builder() -> None:
    workflow = load(".github/workflows/app-image.yaml")
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    steps = [step.get("uses", "") for job in workflow["jobs"].values() for step in job["steps"]]
    for action in ("prepare-multi-arch-matrix", "build-image", "publish-multi-arch-manifest"):
        assert any(f"home-assistant/builder/actions/{action}@" in uses for uses in steps), action
    assert "aarch64" in json.dumps(workflow) and "amd64" in json.dumps(workflow)


def test_apparmor_confines_the_proxy_in_a_child_profile() -> None:
    text = (ROOT / "apparmor.txt").read_text(encoding="utf-8")
    assert "profile ocpp_proxy " in text
    assert "cx -> ocpp_proxy_python" in text and "profile ocpp_proxy_python " in text
    rules = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    # No blanket rules: every capability and every network family is named.
    assert "capability," not in rules and "network," not in rules
    child = text[text.index("\n  profile ocpp_proxy_python") :].split("{", 1)[1]
    assert not [line for line in child.splitlines() if line.strip().startswith("capability")]
    network = {line for line in rules if line.startswith("network ")}
    assert network <= {
        "network inet stream,",
        "network inet6 stream,",
        "network inet dgram,",
        "network inet6 dgram,",
        "network unix stream,",
        "network unix dgram,",
    }


# -- run.sh with a stand-in bashio -------------------------------------------------------------

_FAKE_BASHIO = r"""
# Stand-in for the bashio functions run.sh uses; options from $OPTIONS_FILE (jq, as bashio).
bashio::config() { jq -r --arg k "$1" '.[$k] // empty' "$OPTIONS_FILE"; }
bashio::config.has_value() { [[ -n "$(bashio::config "$1")" ]]; }
bashio::services.available() { [[ -n "${FAKE_MQTT_HOST:-}" ]]; }
bashio::services() {
    case "$2" in
        host) echo "$FAKE_MQTT_HOST" ;; port) echo 1883 ;;
        username) echo addons ;; password) echo "s3cret pass" ;;
    esac
}
bashio::log.info() { echo "LOG: $*" >&2; }
"""

_FAKE_PROXY = """#!/usr/bin/env bash
for arg in "$@"; do echo "ARG=$arg"; done
env | grep '^OCPP_PROXY_' | sort | sed 's/^/ENV:/'
"""


def run_app(tmp_path: Path, options: dict[str, Any], mqtt_service: str | None) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    proxy = bin_dir / "ocpp-proxy"
    proxy.write_text(_FAKE_PROXY)
    proxy.chmod(0o755)
    library = tmp_path / "bashio.sh"
    library.write_text(_FAKE_BASHIO)
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(options))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "BASHIO_LIB": str(library),
        "OPTIONS_FILE": str(options_file),
        "DATA_DIR": str(tmp_path / "data"),
    }
    if mqtt_service:
        env["FAKE_MQTT_HOST"] = mqtt_service
    done = subprocess.run(
        ["bash", str(ROOT / "run.sh")], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq (used by bashio) missing")


@needs_jq
def test_run_sh_passes_the_supervisors_mqtt_broker(tmp_path: Path) -> None:
    options = {**load("config.yaml")["options"], "log_level": "DEBUG"}
    lines = run_app(tmp_path, options, mqtt_service="core-mosquitto")
    args = [line.removeprefix("ARG=") for line in lines if line.startswith("ARG=")]
    assert args == [
        "--config",
        str(tmp_path / "options.json"),
        "--data-dir",
        str(tmp_path / "data"),
        "--port",
        "9000",
        "--ingress-port",
        "8099",
        "--keep-running",
        "--log-level",
        "DEBUG",
    ]
    assert [line for line in lines if line.startswith("ENV:")] == [
        "ENV:OCPP_PROXY_MQTT_HOST=core-mosquitto",
        "ENV:OCPP_PROXY_MQTT_PASSWORD=s3cret pass",
        "ENV:OCPP_PROXY_MQTT_PORT=1883",
        "ENV:OCPP_PROXY_MQTT_USERNAME=addons",
    ]


@needs_jq
def test_run_sh_without_the_mqtt_service_or_with_a_broker_of_the_users(tmp_path: Path) -> None:
    options = load("config.yaml")["options"]
    lines = run_app(tmp_path, options, mqtt_service=None)
    assert "ARG=--config" in lines and "ARG=INFO" in lines
    assert not [line for line in lines if line.startswith("ENV:")]
    # The user's own broker wins over the Supervisor's: it is in options.json already.
    lines = run_app(tmp_path, {**options, "mqtt_host": "broker.lan"}, mqtt_service="core-mosquitto")
    assert not [line for line in lines if line.startswith("ENV:")]


def test_run_sh_is_the_apps_entry_point() -> None:
    text = (ROOT / "run.sh").read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/with-contenv bashio\n")
    assert os.access(ROOT / "run.sh", os.X_OK)
    assert re.search(r"^exec ocpp-proxy --config ", text, re.MULTILINE)


def test_the_proxy_takes_the_mqtt_broker_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ocpp_proxy import cli

    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(load("config.yaml")["options"]))
    monkeypatch.setenv("OCPP_PROXY_MQTT_HOST", "core-mosquitto")
    monkeypatch.setenv("OCPP_PROXY_MQTT_PORT", "1884")
    monkeypatch.setenv("OCPP_PROXY_MQTT_USERNAME", "addons")
    monkeypatch.setenv("OCPP_PROXY_MQTT_PASSWORD", "pw")
    args = cli._run_parser().parse_args(["--config", str(options_file), "--port", "9000"])
    config = cli.load(args)
    assert (config.mqtt_host, config.mqtt_port, config.mqtt_username, config.mqtt_password) == (
        "core-mosquitto",
        1884,
        "addons",
        "pw",
    )


# -- every option's bounds, through the Supervisor and the proxy -----------------------------

#: A valid entry of each list-of-dicts option; the walk varies one field at a time.
ENTRIES: dict[str, dict[str, Any]] = {
    "ocpp_services": {"id": "energy_co", "url": "wss://csms.example/ocpp"},
    "inbound_backends": {"id": "fleet", "token": "a-long-secret"},
    "charging_schedule": {"start": "22:00", "end": "06:00", "max_current_a": 16},
    "chargers": {"id": "CP_1", "password": "charger-secret"},
    "api_tokens": {"name": "kiosk", "token": "kiosk-token-0123456789", "role": "read"},
    "webhooks": {
        "id": "notify",
        "url": "https://hooks.example/ocpp",
        "secret": "webhook-secret-0123456789",
        "events": ["session.stopped"],
    },
}

_ID = ["a", "x" * 64, "x" * 65, "", "a b", "a/b", "a\n", "x" * 64 + "\n", "energy_co"]
_TIME = ["00:00", "23:59", "24:00", "7:00", "22:00\n", "22:60"]
#: Values to try for match() options (besides the walk's generic ones).
PROBES: dict[str, list[Any]] = {
    "charge_point_id": _ID,
    "ocpp_services.id": _ID,
    "inbound_backends.id": _ID,
    "chargers.id": _ID,
    "api_tokens.name": _ID,
    "webhooks.id": _ID,
    "allowed_networks": ["192.168.1.0/24", "10.0.0.1", "fd00::/8", "::1", "lan", "", "1.2.3/8"],
    "trusted_proxies": ["172.30.32.2", "192.168.1.0/24", "fe80::/10", "proxy", ""],
    "ocpp_services.url": [
        "ws://h",
        "wss://h:8443/ocpp/{charge_point_id}",
        "http://h",
        "ws://",
        "ws:///path",
        "ws://h/{other}",
    ],
    "charging_schedule.start": _TIME,
    "charging_schedule.end": _TIME,
    "mqtt_discovery_prefix": ["", "homeassistant", "\n", "my prefix"],
}

#: Where the Supervisor may accept what the proxy refuses: the proxy then leaves the service or
#: backend out with a log line (run.sh passes --keep-running) instead of stopping.
SET_ASIDE = {
    "ocpp_services.url",
    "ocpp_services.auth_type",  # basic or token without its secret
    "inbound_backends.token",
    "preferred_provider",
    "api_token",  # shorter than 16 characters: a generated one is used
    "chargers.password",  # empty: that charger is refused until it has one
    "api_tokens.token",  # shorter than 16 characters: that token is left out
    "webhooks.secret",  # likewise that webhook
}
#: Where the Supervisor is stricter than the proxy (harmless: it refuses before the start).
STRICTER = {"ha_url", "log_level", "ocpp_services.url"}


def probes(path: str, element: str) -> list[Any]:
    """Edge and just-outside values for one schema element."""
    m = _ELEMENT.match(element)
    assert m, element
    if m["num"]:
        low, high = m["i_min"], m["i_max"]
        values: list[Any] = [0, 1, 10]
        values += [int(low), int(low) - 1] if low else []
        values += [int(high), int(high) + 1] if high else []
        return values
    if m["fnum"]:
        low, high = m["f_min"], m["f_max"]
        values = [0.0, 1.5, 100.0]
        values += [float(low), float(low) - 0.001, float(low) + 0.001] if low else []
        values += [float(high), float(high) + 0.001] if high else []
        return values
    if m["plain"] == "port":
        return [0, 1, 65535, 65536]
    if m["plain"] == "bool":
        return [True, False]
    if m["plain"] == "url":
        return ["http://homeassistant.local:8123", "homeassistant.local"]
    if m["list"]:
        return [*m["list"].split("|"), "nope", m["list"].split("|")[0].lower()]
    if m["match"] is not None:
        assert path in PROBES, f"{path}: add probes for {element}"
        return PROBES[path]
    return ["", "x", "1234567", "12345678", "a-long-secret"]


def walk(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, element, user options) for every probe of every option and nested field."""
    for key, element in schema.items():
        if key in SET_BY_RUN_SH:
            continue
        if isinstance(element, list) and isinstance(element[0], dict):
            assert key in ENTRIES, f"{key}: add a valid entry to ENTRIES for the walk"
            for field_name, field_element in element[0].items():
                path = f"{key}.{field_name}"
                nested = isinstance(field_element, list)  # a list inside an entry
                inner = field_element[0] if nested else field_element
                for value in probes(path, inner):
                    field_value = [value] if nested else value
                    yield path, inner, {key: [{**ENTRIES[key], field_name: field_value}]}
        elif isinstance(element, list):
            for value in probes(key, element[0]):
                yield key, element[0], {key: [value]}
        else:
            for value in probes(key, element):
                yield key, element, {key: value}


def test_every_option_the_supervisor_accepts_starts_the_proxy_and_bounds_are_the_same() -> None:
    schema = load("config.yaml")["schema"]
    walked, differences = 0, []
    for path, element, change in walk(schema):
        walked += 1
        try:
            written = app_options(**change)
        except Refused:
            written = None
        # Through options.json, as the proxy reads it.
        problems: list[ConfigError] = []
        strict_ok = lenient_ok = True
        if written is not None:
            text = json.dumps(written)
            try:
                parse_config(json.loads(text))
            except ConfigError:
                strict_ok = False
            try:
                parse_config(json.loads(text), set_aside=problems.append)
            except ConfigError:
                lenient_ok = False
            # Whatever the Supervisor accepts, the app starts on.
            assert lenient_ok, (path, change)
            if not strict_ok:
                assert path in SET_ASIDE, (path, change, "refused by the proxy")
                assert len(problems) == 1 and problems[0].key.startswith(path.split(".")[0])
                assert "left out" in problems[0].reason or "running without" in problems[0].reason
            continue
        # The Supervisor refused: the proxy should refuse it too, where the bounds can match.
        try:
            parse_config(change)
        except ConfigError:
            continue
        if path not in STRICTER:
            differences.append((path, element, change))
    assert walked > 300
    assert differences == [], "the proxy accepts what the Supervisor refuses"


def test_the_supervisor_writes_what_the_proxy_reads_for_numbers() -> None:
    # An int typed as 10.0 or a float typed as 5 arrive as the option's type.
    written = app_options(heartbeat_interval=10.0, response_timeout=5, rate_limit_seconds="3")
    assert (written["heartbeat_interval"], written["response_timeout"]) == (10, 5.0)
    config = parse_config(json.loads(json.dumps(written)))
    assert (config.heartbeat_interval, config.response_timeout, config.rate_limit_seconds) == (
        10,
        5.0,
        3,
    )
    # A bounded str would refuse every value in the Supervisor: the schema uses match() instead.
    for element in load("config.yaml")["schema"].values():
        inner = element[0] if isinstance(element, list) else element
        for sub in inner.values() if isinstance(inner, dict) else [inner]:
            text = sub[0] if isinstance(sub, list) else sub  # a list inside an entry
            assert not re.match(r"^(str|password)\(", text), text
    with pytest.raises(Refused):
        supervisor_value("str(1,64)", "CP_1")


def test_options_json_with_raw_control_characters_is_read_as_json(tmp_path: Path) -> None:
    # The Supervisor writes a tab typed into a password as is; YAML refuses it in a quoted
    # string, JSON (not strict) keeps it.
    options = app_options(mqtt_password="pass\tword", home_currency="EUR")
    text = json.dumps(options).replace("\\t", "\t")
    assert "\t" in text
    path = tmp_path / "options.json"
    path.write_text(text, encoding="utf-8")
    assert load_config(path).mqtt_password == "pass\tword"
    with pytest.raises(ConfigError, match="not valid JSON at line 1"):
        (tmp_path / "bad.json").write_text('{"mqtt_password": "x', encoding="utf-8")
        load_config(tmp_path / "bad.json")


def test_conflicting_options_leave_a_log_line_and_a_running_proxy(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from ocpp_proxy import cli

    options = app_options(
        ocpp_services=[
            {"id": "a", "url": "wss://a.example/ocpp", "auth_type": "basic"},  # no password
            {"id": "b", "url": "wss://b.example/ocpp"},
            {"id": "b", "url": "wss://c.example/ocpp"},  # duplicate id
        ],
        inbound_backends=[{"id": "fleet", "token": "short"}],
        preferred_provider="a",
    )
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options), encoding="utf-8")
    args = ["--config", str(path), "--data-dir", str(tmp_path / "data")]
    # Without --keep-running (a plain install): exit 2 naming the key.
    assert cli.main(["token", "--config", str(path)]) == 2
    assert "ocpp_services[0].password: required when auth_type is basic" in capfd.readouterr().err
    config = cli.load(cli._run_parser().parse_args([*args, "--keep-running"]))
    err = capfd.readouterr().err
    assert [s.id for s in config.ocpp_services] == ["b"]
    assert (config.inbound_backends, config.preferred_provider) == ((), "")
    for line in (
        "ocpp_services[0].password: required when auth_type is basic; service 'a' is left out",
        "ocpp_services[2].id: duplicate id 'b', already used by ocpp_services[1].id; "
        "this entry is left out",
        "inbound_backends[0].token: must be at least 8 characters; inbound backend 'fleet' is "
        "left out",
        "preferred_provider: must be empty or the id of a configured service or inbound "
        "backend, got 'a'; running without a preferred provider",
    ):
        assert line in err, line
    assert not math.isnan(config.response_timeout)


APPARMOR_PARSER = shutil.which("apparmor_parser") or next(
    (p for p in ("/usr/sbin/apparmor_parser", "/sbin/apparmor_parser") if os.path.exists(p)), None
)


@pytest.mark.skipif(APPARMOR_PARSER is None, reason="apparmor_parser missing (apt: apparmor)")
def test_apparmor_profile_compiles() -> None:
    # What the Supervisor does when it installs the app (compile only: no kernel load here).
    done = subprocess.run(
        [
            str(APPARMOR_PARSER),
            "--skip-kernel-load",
            "--skip-cache",
            "--stdout",
            str(ROOT / "apparmor.txt"),
        ],
        capture_output=True,
        timeout=60,
    )
    errors = [
        line
        for line in done.stderr.decode(errors="replace").splitlines()
        if "Cache read/write disabled" not in line
    ]
    assert done.returncode == 0 and not errors, errors
