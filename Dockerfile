# peft-planner service image.
#   docker build -t peft-planner .
#   docker run -p 8000:8000 -v peft-data:/data -v "$PWD/models:/models:ro" peft-planner
# CPU torch by default. On a GPU host (NVIDIA container toolkit), build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 -t peft-planner:cuda .
# and run with `--gpus all`; CUDA wheels carry their own CUDA libraries, so the slim base works.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PEFT_PLANNER_DB=/data/peft-planner.db \
    PEFT_PLANNER_MODELS_ROOT=/models

WORKDIR /srv/peft-planner
RUN python -m venv /opt/venv \
    && pip install --index-url "$TORCH_INDEX" "torch==${TORCH_VERSION}"
COPY pyproject.toml README.md ./
COPY app ./app
COPY profiler ./profiler
COPY solver ./solver
# This project with its postgres extra (psycopg, for PEFT_PLANNER_DB=postgresql+psycopg://...);
# hadolint reads `.[postgres]` as an unpinned package from the index.
# hadolint ignore=DL3013
RUN pip install ".[postgres]"

RUN groupadd --system --gid 10001 planner \
    && useradd --system --uid 10001 --gid planner --home-dir /data planner \
    && mkdir -p /data /models \
    && chown planner:planner /data
VOLUME ["/data", "/models"]
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["peft-planner", "serve", "--host", "0.0.0.0", "--port", "8000"]
