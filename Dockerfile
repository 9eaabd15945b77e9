FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY oddsflow oddsflow
COPY producers producers
COPY streams streams
COPY sinks sinks
COPY schemas schemas
COPY config.toml .
RUN pip install --no-cache-dir -e .
CMD ["oddsflow", "worker", "all"]
