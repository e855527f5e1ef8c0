# syntax=docker/dockerfile:1
# CPU image by default; for CUDA: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# the browser UI (labeling/web), built from the locked npm packages
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY labeling/web/package.json labeling/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY labeling/web/ ./
RUN npm run build

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY earthplat earthplat
COPY olmo_lm olmo_lm
COPY labeling labeling
COPY api api
# torch and torchvision come from the chosen index, pinned in the same command as the project
RUN pip install --extra-index-url "${TORCH_INDEX}" "torch==2.14.1" "torchvision==0.29.1" .

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 1000 earthplat
COPY --from=build /opt/venv /opt/venv
COPY --from=web /web/dist /opt/earthplat-web
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    EARTHPLAT_CACHE_DIR=/home/earthplat/.cache/earthplat EARTHPLAT_WEB_DIST=/opt/earthplat-web
WORKDIR /home/earthplat
COPY --chown=earthplat olmo_lm/configs /home/earthplat/configs
USER earthplat
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["earthplat", "healthcheck"]
# The platform: API on :8000 plus one job worker (SQLite under /home/earthplat/earthplat-data
# unless EARTHPLAT_DATABASE_URL names PostgreSQL); mount demo imagery at /data/real for the demo.
ENV EARTHPLAT_DEMO_DATA=/data/real EARTHPLAT_HEALTH_URL=http://127.0.0.1:8000/api/v1/health
EXPOSE 8000
CMD ["python", "-m", "api.launch", "--host", "0.0.0.0", "--port", "8000"]
