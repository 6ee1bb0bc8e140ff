# syntax=docker/dockerfile:1
# The control plane image (REST service, registry, tracking, tuning, converters); it also
# runs the MLflow tracking server of the compose stack.
#   docker build -f docker/control-plane.Dockerfile -t modelyard-control-plane .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml constraints.txt README.md ./
COPY modelyard ./modelyard
COPY inference_server ./inference_server
COPY converters ./converters
COPY control_plane ./control_plane
COPY examples ./examples
RUN pip install --prefix=/install -c constraints.txt '.[control-plane]'

FROM ${PYTHON_IMAGE}
# libgomp1: OpenMP runtime of LightGBM and XGBoost. Not version-pinned on purpose: Debian
# replaces point releases with security updates, so a pin breaks rebuilds (hadolint DL3008
# is ignored in docker/.hadolint.yaml for this reason); the base image tag pins the release.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
COPY config /etc/modelyard
RUN useradd --system --uid 10001 --no-create-home modelyard \
    && mkdir -p /srv/modelyard \
    && chown modelyard /srv/modelyard
USER 10001
ENV MODELYARD_ENV=production \
    MODELYARD_CONFIG_DIR=/etc/modelyard \
    MODELYARD_CONTROL_PLANE_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["modelyard", "control-plane"]
