#!/usr/bin/with-contenv bashio
# shellcheck shell=bash
# Starts ocpp-proxy inside the Home Assistant app container.
#
# The proxy reads the app's options straight from /data/options.json (with a JSON parser). This
# script adds what only the Supervisor knows: the MQTT broker of the Mosquitto app, when the user
# has not named a broker, passed as environment variables so the password stays out of `ps`.
# Port 9000 serves chargers, backends, the page and the API (TLS with ssl_certfile); 8099 is the
# plain-HTTP ingress listener for the Supervisor only. --keep-running: options that conflict
# with each other are logged and left out rather than stopping the app (no restart loop).
set -euo pipefail

# The shebang loads bashio in the container; tests run `bash run.sh` with a stand-in library.
if [[ -n "${BASHIO_LIB:-}" ]]; then
    # shellcheck source=/dev/null
    source "${BASHIO_LIB}"
fi

OPTIONS_FILE="${OPTIONS_FILE:-/data/options.json}"
DATA_DIR="${DATA_DIR:-/data}"

if bashio::config.has_value 'mqtt_host'; then
    bashio::log.info "MQTT: using the broker from the options"
elif bashio::services.available 'mqtt'; then
    OCPP_PROXY_MQTT_HOST="$(bashio::services mqtt 'host')"
    OCPP_PROXY_MQTT_PORT="$(bashio::services mqtt 'port')"
    OCPP_PROXY_MQTT_USERNAME="$(bashio::services mqtt 'username')"
    OCPP_PROXY_MQTT_PASSWORD="$(bashio::services mqtt 'password')"
    export OCPP_PROXY_MQTT_HOST OCPP_PROXY_MQTT_PORT OCPP_PROXY_MQTT_USERNAME OCPP_PROXY_MQTT_PASSWORD
    bashio::log.info "MQTT: using the Supervisor's broker at ${OCPP_PROXY_MQTT_HOST}:${OCPP_PROXY_MQTT_PORT}"
else
    bashio::log.info "MQTT: no broker; Home Assistant entities are not published"
fi

LOG_LEVEL="INFO"
if bashio::config.has_value 'log_level'; then
    LOG_LEVEL="$(bashio::config 'log_level')"
fi

exec ocpp-proxy --config "${OPTIONS_FILE}" --data-dir "${DATA_DIR}" --port 9000 \
    --ingress-port 8099 --keep-running --log-level "${LOG_LEVEL}"
