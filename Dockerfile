# syntax=docker/dockerfile:1
# Tellonce: build a wheel in one stage, run it as a non-root user in another.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY ivr ./ivr
COPY console ./console
COPY migrations ./migrations
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 tellonce
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER tellonce
WORKDIR /home/tellonce
# The embedded default keeps its SQLite file and generated secrets here; mount a volume on it,
# or set TELLONCE_DATABASE_URL, TELLONCE_REDIS_URL, TELLONCE_SECRET_KEY and TELLONCE_IVR_API_KEY.
VOLUME ["/home/tellonce"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["tellonce", "serve", "--host", "0.0.0.0", "--port", "8000"]
