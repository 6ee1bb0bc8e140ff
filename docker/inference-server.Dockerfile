# The inference server image: the lean base install only (no training or control-plane
# dependencies). Build from the repository root:
#   docker build -f docker/inference-server.Dockerfile -t modelyard-inference-server .
# Run with a model repository mounted (one worker per container core; scale with replicas):
#   docker run -p 8000:8000 -p 8001:8001 -p 8002:8002 -v $PWD/repo:/models modelyard-inference-server
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY modelyard ./modelyard
COPY inference_server ./inference_server
COPY converters ./converters
COPY control_plane ./control_plane
COPY examples ./examples
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt .

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 modelyard
USER modelyard
ENV MODELYARD_ENV=production \
    MODELYARD_SERVER_HOST=0.0.0.0 \
    MODELYARD_SERVER_MODEL_REPOSITORY=/models
EXPOSE 8000 8001 8002
STOPSIGNAL SIGTERM
ENTRYPOINT ["modelyard", "serve"]
CMD ["--model-repository", "/models"]
