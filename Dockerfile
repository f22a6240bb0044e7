FROM python:3.11-slim
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_DEV=1
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project
COPY ledger ledger
COPY projections projections
COPY api api
COPY workers workers
RUN uv sync --frozen
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 8000
CMD ["ledger", "api", "--host", "0.0.0.0", "--port", "8000"]
