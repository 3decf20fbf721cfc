# The token service and the bot worker (one image, two commands).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY talkplatform_agents ./talkplatform_agents
RUN pip install --no-cache-dir . && useradd --system talk
USER talk
ENV LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE=0 PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["talkplatform-agents", "serve", "--host", "0.0.0.0"]
