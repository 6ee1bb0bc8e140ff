# syntax=docker/dockerfile:1
# The inference server image: the lean base install only (onnxruntime, grpcio, numpy, ...),
# no training, converter or control-plane dependencies and no control-plane code.
#   docker build -f docker/inference-server.Dockerfile -t modelyard-inference-server .
# Run with a model repository mounted (one worker per container core; scale with replicas).
# config/production.toml records every answer in PostgreSQL (MODELYARD_DATABASE_URL); alone,
# without a database, turn the prediction log off:
#   docker run -p 8000:8000 -p 8001:8001 -p 8002:8002 -v $PWD/repo:/models \
#     -e MODELYARD_PREDICTION_LOG_ENABLED=false modelyard-inference-server
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml constraints.txt README.md ./
COPY modelyard ./modelyard
COPY inference_server ./inference_server
# Only the serving packages are copied: setuptools' find includes what exists, and the
# control-plane entry points stay unloaded metadata.
RUN pip install --prefix=/install -c constraints.txt .

FROM ${PYTHON_IMAGE}
COPY --from=build /install /usr/local
# The environment files (config/<MODELYARD_ENV>.toml): production's turns the prediction log on,
# its spool in /var/lib/modelyard (local to the container, writable by the server's user).
COPY config /etc/modelyard
RUN useradd --system --uid 10001 --no-create-home modelyard \
    && mkdir -p /models /var/lib/modelyard \
    && chown modelyard /var/lib/modelyard
USER 10001
ENV MODELYARD_ENV=production \
    MODELYARD_CONFIG_DIR=/etc/modelyard \
    MODELYARD_SERVER_HOST=0.0.0.0 \
    MODELYARD_SERVER_MODEL_REPOSITORY=/models \
    PYTHONUNBUFFERED=1
EXPOSE 8000 8001 8002
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2)"]
ENTRYPOINT ["modelyard", "serve"]
CMD ["--model-repository", "/models"]
