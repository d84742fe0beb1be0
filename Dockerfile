# The image behind every mediapurge service in docker-compose.yml (migrate, worker, beat, flower,
# sandbox): the package installed, run as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# README* rather than README.md: pyproject names it, but the build only warns when it is missing.
COPY pyproject.toml README* ./
COPY models ./models
COPY worker ./worker
COPY tasks ./tasks
COPY migrations ./migrations
RUN pip install . && rm -rf /src

# Beat keeps its schedule file in the working directory, so that one must be writable.
RUN useradd --system --uid 10001 --home-dir /var/lib/mediapurge --create-home mediapurge
USER mediapurge
WORKDIR /var/lib/mediapurge

CMD ["mediapurge", "--help"]
