# syntax=docker/dockerfile:1
# vlm-anomaly as one service: watch (cameras, Frigate, Home Assistant discovery) + REST API (:8000)
# + dashboard (:8501) under one supervisor, configured by one YAML file (`vlm-anomaly service`).
#
#   docker build -t vlm-anomaly .
#   docker run --rm -i vlm-anomaly ui --hash-password <<< 'a long dashboard password'   # prints scrypt:...
#   docker run --init -p 8000:8000 -p 8501:8501 -v ./service.yaml:/config/vlm-anomaly.yaml:ro \
#     -v vlm-data:/data -e VLM_ANOMALY_API_TOKENS=<a long random token> \
#     -e VLM_ANOMALY_DASHBOARD_PASSWORD_HASH=scrypt:... vlm-anomaly
#
# No credential is baked in: the dashboard listens on every interface of the container, so it starts
# only when the run gives it a login - the password hash, or the API tokens (they open it too) - and
# `service` stops at once with one line saying so otherwise.
#
# Built from the same pyproject.toml as a local install; compose.yaml does the same with a volume.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
# CPU wheels of PyTorch (the versions the Makefile pins): the CUDA ones are gigabytes larger
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu \
      "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install ".[ui,api]"

FROM python:${PYTHON_VERSION}-slim
# libglib2.0-0 for OpenCV; curl-free health check below uses Python itself
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 vlm \
 && mkdir -p /data /config \
 && chown vlm /data /config
COPY --from=build /opt/venv /opt/venv
# models, events, caches and downloaded weights live on the /data volume; the API and the
# dashboard listen on every interface of the container (publish the ports you want), each behind
# its login (VLM_ANOMALY_API_TOKENS; VLM_ANOMALY_DASHBOARD_PASSWORD_HASH or the API tokens)
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/data/huggingface \
    VLM_ANOMALY_HOME=/data \
    VLM_ANOMALY_CONFIG=/config/vlm-anomaly.yaml \
    VLM_ANOMALY_API_HOST=0.0.0.0 \
    VLM_ANOMALY_UI_ADDRESS=0.0.0.0
USER vlm
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('VLM_ANOMALY_API_PORT', '8000'), timeout=4)"]
# `vlm-anomaly service` turns SIGTERM (docker stop) into a graceful stop of all three processes
STOPSIGNAL SIGTERM
ENTRYPOINT ["vlm-anomaly"]
CMD ["service"]
