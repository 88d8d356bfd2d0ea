# One shared build of the common package and every service's code, with the pinned
# dependencies; each service's Dockerfile starts FROM this image and only sets its command.
# Build from the repository root: docker build -f deploy/docker/base.Dockerfile -t agentia/base:dev .
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY services ./services
RUN python -m venv /opt/agentia \
 && /opt/agentia/bin/pip install -c constraints.txt .

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/agentia/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    AGENTIA_HOME=/tmp/agentia
COPY --from=build /opt/agentia /opt/agentia
RUN groupadd --gid 10001 agentia && useradd --uid 10001 --gid 10001 --no-create-home agentia
USER 10001:10001
WORKDIR /tmp
