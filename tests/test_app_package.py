"""The Home Assistant app package: config.yaml, its schema, translations, docs, run.sh, Dockerfile.

The Supervisor's option schema is checked with a small validator for the syntax config.yaml
uses (types as in the Supervisor's ``addons/options.py``), so that a default the Supervisor
would refuse, or an option the proxy reads but the app does not offer, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocpp_proxy.config import DEFAULTS, parse_config

ROOT = Path(__file__).resolve().parent.parent
#: Options run.sh sets on the command line instead of the app's options.
SET_BY_RUN_SH = {"host", "port", "data_dir"}
BASE_IMAGE = "ghcr.io/home-assistant/base-python:3.13-alpine3.21"

_ELEMENT = re.compile(
    r"^(?:(?P<plain>bool|email|url|port)"
    r"|(?P<sized>str|password)(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|(?P<num>int|float)(?:\((?P<n_min>[\d.]+)?,(?P<n_max>[\d.]+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\))(?P<optional>\?)?$"
)


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def check_value(schema: str, value: Any, where: str) -> None:
    """Raise AssertionError if ``value`` does not pass the Supervisor schema element."""
    m = _ELEMENT.match(schema)
    assert m, f"{where}: {schema!r} is not a Supervisor schema type"
    if m["plain"] == "bool":
        assert isinstance(value, bool), f"{where}: {value!r} is not a bool"
    elif m["plain"] == "port":
        assert type(value) is int and 1 <= value <= 65535, f"{where}: {value!r} is not a port"
    elif m["plain"] == "url":
        assert isinstance(value, str) and re.match(r"^https?://.+", value), where
    elif m["plain"] == "email":
        assert isinstance(value, str) and "@" in value, where
    elif m["sized"]:
        assert isinstance(value, str | int | float) and not isinstance(value, bool), where
        text = str(value)
        assert m["s_min"] is None or len(text) >= int(m["s_min"]), f"{where}: too short"
        assert m["s_max"] is None or len(text) <= int(m["s_max"]), f"{where}: too long"
    elif m["num"]:
        assert isinstance(value, int | float) and not isinstance(value, bool), where
        if m["num"] == "int":
            assert float(value).is_integer(), f"{where}: {value!r} is not an integer"
        assert m["n_min"] is None or value >= float(m["n_min"]), f"{where}: below minimum"
        assert m["n_max"] is None or value <= float(m["n_max"]), f"{where}: above maximum"
    elif m["match"] is not None:
        assert re.match(m["match"], str(value)), f"{where}: {value!r} !~ {m['match']}"
    else:
        assert str(value) in m["list"].split("|"), f"{where}: {value!r} not in {m['list']}"


def check_options(schema: dict[str, Any], options: dict[str, Any], where: str = "") -> None:
    """Validate an options mapping like the Supervisor: no unknown keys, required ones present."""
    for key, value in options.items():
        path = f"{where}{key}"
        assert key in schema, f"{path}: not in the schema"
        element = schema[key]
        if isinstance(element, list):
            assert isinstance(value, list), f"{path}: expected a list"
            for index, item in enumerate(value):
                if isinstance(element[0], dict):
                    check_options(element[0], item, f"{path}[{index}].")
                else:
                    check_value(element[0], item, f"{path}[{index}]")
        else:
            check_value(element, value, path)
    for key, element in schema.items():
        if isinstance(element, str) and not element.endswith("?") and key not in options:
            # Top-level non-optional options take their default from `options`; nested ones
            # (inside list entries) are required.
            assert not where, f"{where}{key}: required"


def test_config_yaml_has_the_required_keys_and_is_the_only_one() -> None:
    config = load("config.yaml")
    for key in ("name", "version", "slug", "description", "arch", "url"):
        assert config[key], key
    assert config["arch"] == ["aarch64", "amd64"]
    assert config["init"] is False
    assert (config["startup"], config["boot"]) == ("services", "auto")
    assert config["homeassistant_api"] is True
    assert config["services"] == ["mqtt:want"]
    assert config["ports"] == {"9000/tcp": 9000} and "9000/tcp" in config["ports_description"]
    assert config["watchdog"] == "tcp://[HOST]:[PORT:9000]"
    # Ingress proxies to the same port that serves the web page and /health.
    assert (config["ingress"], config["ingress_port"]) == (True, 9000)
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
    for key in ("ha_token", "mqtt_password", "api_token"):
        assert config["schema"][key] == "password", key
    assert config["schema"]["ocpp_services"][0]["password"].startswith("password")
    assert config["schema"]["inbound_backends"][0]["token"].startswith("password")
    assert config["schema"]["chargers"][0]["password"] == "password"


def test_options_validate_and_load_with_the_proxys_defaults() -> None:
    config = load("config.yaml")
    check_options(config["schema"], config["options"])
    for key, value in config["options"].items():
        assert value == DEFAULTS[key], key
    # What the Supervisor writes to /data/options.json is what the proxy reads as --config.
    written = json.loads(json.dumps(config["options"]))
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
        "inbound_backends": [{"id": "fleet", "token": "a-long-secret", "share_sessions": "own"}],
        "id_tag_routes": [{"match": "NL-ABC-*", "backend": "fleet"}],
        "home_cards": [{"id": "04A1B2C3D4", "name": "Anna", "expires": "2030-01-01"}],
        "offline_authorization": "home_cards",
        "chargers": [{"id": "CP_1", "password": "charger-secret"}],
        "charging_schedule": [{"start": "22:00", "end": "06:00", "max_current_a": 16}],
        "allowed_providers": ["energy_co"],
        "preferred_provider": "energy_co",
        "max_current_a": 10.0,
        "ha_url": "http://homeassistant.local:8123",
        "mqtt_port": 1884,
        "log_level": "DEBUG",
    }
    check_options(config["schema"], options)
    parsed = parse_config(options)
    assert parsed.ocpp_services[0].version.value == "2.0.1"
    assert parsed.charging_schedule[0].max_current_a == 16
    assert parsed.inbound_backends[0].share_sessions == "own"
    assert parsed.id_tag_routes[0].backend == "fleet"
    assert parsed.home_cards[0].name == "Anna"


def test_every_option_is_translated_and_documented() -> None:
    schema = load("config.yaml")["schema"]
    translations = load("translations/en.yaml")["configuration"]
    docs = (ROOT / "DOCS.md").read_text(encoding="utf-8")
    for key in schema:
        assert translations[key]["name"] and translations[key]["description"], key
        assert f"`{key}`" in docs, f"{key} is not in DOCS.md"
    assert set(translations) == set(schema)


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
    assert build["build_from"] == {"aarch64": BASE_IMAGE, "amd64": BASE_IMAGE}


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
