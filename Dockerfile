FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
RUN pip install --no-cache-dir .

RUN useradd --system --uid 10001 alrank
USER alrank
EXPOSE 8000
CMD ["gunicorn", "--config=python:service.gunicorn", "--bind=0.0.0.0:8000", "service:create_app()"]
