# The control plane image (REST service, registry, tracking, tuning, converters).
#   docker build -f docker/control-plane.Dockerfile -t modelyard-control-plane .
FROM python:3.11-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY modelyard ./modelyard
COPY inference_server ./inference_server
COPY converters ./converters
COPY control_plane ./control_plane
COPY examples ./examples
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt '.[control-plane]'

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
COPY config /etc/modelyard
RUN useradd --system --uid 10001 modelyard
USER modelyard
ENV MODELYARD_ENV=production \
    MODELYARD_CONFIG_DIR=/etc/modelyard \
    MODELYARD_CONTROL_PLANE_HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["modelyard", "control-plane"]
