# The Home Assistant app image. The build context is the repository root, so the package is
# installed from this checkout rather than from an index. BUILD_FROM's default is a maintained
# multi-arch tag of Home Assistant's docker-base matrix: Supervisors from 2026.04 on build with
# it as is; older ones pass their build.yaml's (the same image).
ARG BUILD_FROM=ghcr.io/home-assistant/base-python:3.13-alpine3.24
FROM $BUILD_FROM

ARG BUILD_VERSION=0.1.0
LABEL \
    io.hass.type="app" \
    io.hass.name="OCPP Proxy" \
    io.hass.description="One EV charger, several OCPP central systems, the homeowner in control." \
    io.hass.version="${BUILD_VERSION}" \
    org.opencontainers.image.title="ocpp-proxy" \
    org.opencontainers.image.source="https://github.com/ocpp-proxy/ocpp-proxy" \
    org.opencontainers.image.licenses="Apache-2.0"

WORKDIR /usr/src/ocpp-proxy
COPY pyproject.toml README.md ./
COPY ocpp_proxy/ ./ocpp_proxy/
# Wheels only (PyPI has musllinux wheels of every dependency for aarch64 and amd64): a missing
# one fails the build at once instead of compiling for an hour on a Raspberry Pi. The project
# itself is built from this folder (setuptools comes as a wheel too).
RUN pip3 install --no-cache-dir --only-binary=:all: . \
    && cd / && rm -rf /usr/src/ocpp-proxy

COPY run.sh /run.sh
RUN chmod a+x /run.sh

# The TCP watchdog sees only an open port; this sees a stuck event loop too. It asks the
# plain-HTTP ingress listener, which answers /health to the container itself whether or not
# port 9000 speaks TLS.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8099/health', timeout=8)"

WORKDIR /data
CMD ["/run.sh"]
