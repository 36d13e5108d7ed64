# The application image: every part (api, ingest, simulator, migrations, grafana sync) is an
# `ldl` sub-command of the same image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY infra ./infra
COPY access ./access
COPY api ./api
COPY trials ./trials
COPY evidence ./evidence
COPY devices ./devices
COPY ingest ./ingest
COPY grafana ./grafana
COPY ldl ./ldl
COPY bench ./bench
COPY i18n ./i18n
COPY web ./web
RUN pip install . && useradd --system --uid 10001 ldl \
    && mkdir -p /var/lib/ldl /broker-auth /erasures \
    && chown ldl /var/lib/ldl /broker-auth /erasures  # a new named volume takes this owner
USER ldl
ENV LDL_DATA_DIR=/var/lib/ldl
ENTRYPOINT ["ldl"]
CMD ["--help"]
