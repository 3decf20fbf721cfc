# The token service and the bots: one image, two commands (docker-compose.yml).

# The blur model (MediaPipe's selfie segmentation), fetched and checked against its pinned
# sha256 by the project's own script, which wants a venv for pip.
FROM python:3.11-slim AS models
WORKDIR /src
COPY scripts/fetch-models.sh scripts/
RUN python -m venv .venv && scripts/fetch-models.sh

# The web pages (web/), built from the committed lock file by the project's own script.
FROM node:20-slim AS web
WORKDIR /src
COPY scripts/build-web.sh scripts/
COPY web ./web
RUN rm -rf web/node_modules web/dist && scripts/build-web.sh

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY talkplatform_agents ./talkplatform_agents
# Every compiled dependency (livekit, OpenCV, PyAV, pocketsphinx and its en-us model,
# onnxruntime for Silero) is a manylinux wheel needing only libc, libstdc++ and zlib, which
# the slim image has: no apt packages. The recordings directory is the mount point of the
# volume the recorder and the service share; a new named volume takes its owner from here.
RUN pip install --no-cache-dir . \
    && useradd --system --home-dir /app talk \
    && mkdir -p /app/var/recordings && chown -R talk /app/var
COPY --from=models /src/models/selfie_segmentation.tflite /app/models/selfie_segmentation.tflite
COPY --from=web /src/web/dist /app/web/dist
USER talk
# No local inference model preloaded in every bot job process (244 MB each).
ENV LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE=0 \
    PYTHONUNBUFFERED=1 \
    SEGMENTATION_MODEL=/app/models/selfie_segmentation.tflite \
    RECORDINGS_DIR=/app/var/recordings \
    WEB_DIR=/app/web/dist
EXPOSE 8000
CMD ["talkplatform-agents", "serve", "--host", "0.0.0.0"]
