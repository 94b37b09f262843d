# One image, three processes (docker-compose.yml runs them, behind Caddy for HTTPS):
#   web:     gunicorn --bind 0.0.0.0:8000 --workers 4 --threads 4 --no-control-socket 'hotline:create_app()'
#   worker:  hotline worker                (healthcheck: hotline worker --check)
#   migrate: hotline db upgrade
# .dockerignore keeps instance/ (secrets, database), .env, .venv and .git out of the build context.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOTLINE_ENV=production HOTLINE_INSTANCE=/data
WORKDIR /app
# ffmpeg comes inside the imageio-ffmpeg wheel (requirements.txt); no system package is needed.
COPY requirements.txt pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.txt
COPY hotline ./hotline
COPY workers ./workers
COPY migrations ./migrations
COPY ivr_scripts ./ivr_scripts
COPY audio ./audio
# Editable install: the code runs from /app, beside the audio/, ivr_scripts/ and migrations/ it reads.
RUN pip install --no-cache-dir --no-deps -e . && useradd --system --home /data hotline && mkdir -p /data \
    && chown hotline /data
USER hotline
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--no-control-socket", \
     "hotline:create_app()"]
