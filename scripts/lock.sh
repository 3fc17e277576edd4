#!/usr/bin/env bash
# Regenerate requirements.lock: every package of pyproject.toml (with the test and dev extras)
# pinned to one version, resolved for this Python. Run after changing dependencies in
# pyproject.toml, and commit both. Installs use it as a constraints file (README, "Install";
# .ci/run; docs/deploy.md):
#     pip install -c requirements.lock -e '.[test]'        (development, CI)
#     pip install -c requirements.lock .                   (a deploy: runtime packages only)
# Works offline against the package index pip is configured with (`pip config list`).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
if ! "$python" -m piptools --version >/dev/null 2>&1; then
    "$python" -m pip install -q pip-tools
fi
# --strip-extras: a constraints file may not name extras; --no-annotate keeps diffs short but
# we keep the "via" comments: they say why a package is there.
CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$python" -m piptools compile \
    --quiet --strip-extras --no-emit-index-url --no-emit-find-links --resolver=backtracking \
    --extra test --extra dev --output-file requirements.lock pyproject.toml "$@"
echo "requirements.lock: $(grep -c '^[A-Za-z0-9]' requirements.lock) packages pinned"
