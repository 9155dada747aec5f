# The dashboard as a container: a Hugging Face Space (Docker SDK; see "Deploying" in README.md) or any Docker host:
#   docker build -t llm-fingerprint . && docker run --rm -p 8501:8501 llm-fingerprint    # then http://localhost:8501
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Chromium (and fonts) for static image export of the charts. Unpinned: Debian's security updates should land.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*

# Spaces run the container as user id 1000.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# The dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (the demo models are package data, in fingerprint/demo_models).
COPY --chown=user:user . .
RUN pip install --no-deps . && rm -rf build ./*.egg-info && chown user:user .

USER 1000
# Shared mode for a public server (README.md, "Deploying"); Streamlit's upload limit equals the tool's cap.
ENV HOME=/home/user \
    FINGERPRINT_SHARED_MODE=1 \
    FINGERPRINT_MAX_UPLOAD_MB=200 \
    STREAMLIT_SERVER_MAX_UPLOAD_SIZE=200 \
    FINGERPRINT_CACHE=/tmp/llm-fingerprint/fingerprints.sqlite

EXPOSE 8501
CMD ["python", "-m", "streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", "--browser.gatherUsageStats=false"]
