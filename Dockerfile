# The Home Assistant app image. The build context is the repository root, so the package is
# installed from this checkout rather than from an index.
ARG BUILD_FROM=ghcr.io/home-assistant/base-python:3.13-alpine3.21
FROM $BUILD_FROM

WORKDIR /usr/src/ocpp-proxy
COPY pyproject.toml README.md ./
COPY ocpp_proxy/ ./ocpp_proxy/
# Home Assistant's musllinux wheels spare the slow aarch64 builds of aiohttp, uvloop and co.
RUN pip3 install --no-cache-dir --prefer-binary \
        --find-links "https://wheels.home-assistant.io/musllinux/" . \
    && cd / && rm -rf /usr/src/ocpp-proxy

COPY run.sh /run.sh
RUN chmod a+x /run.sh

WORKDIR /data
CMD ["/run.sh"]
