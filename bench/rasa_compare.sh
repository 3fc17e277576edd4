#!/usr/bin/env bash
# Compare Sanad's embedded NLU with Rasa 3.6 (DIET, nlu/config.yml) on the held-out set.
# Not run by CI (it installs Rasa and TensorFlow: ~2 GB, several minutes).
#
#   bench/rasa_compare.sh [HELDOUT_FILE]
#
# Environment: PY310 (a Python 3.10 interpreter; default: pyenv's 3.10.13),
# RASA_WORK_DIR (venv, models and Rasa's cache; default /tmp/sanad-rasa),
# RASA_PORT (default 5055), SANAD_PY (the project's Python; default .venv/bin/python).
# Rasa trains on nlu/ unchanged; nothing is written inside the repository.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELDOUT="${1:-$ROOT/nlu/tests/heldout.jsonl}"
WORK="${RASA_WORK_DIR:-${TMPDIR:-/tmp}/sanad-rasa}"
PORT="${RASA_PORT:-5055}"
SANAD_PY="${SANAD_PY:-$ROOT/.venv/bin/python}"
if [[ -z "${PY310:-}" ]]; then
  PY310="$(pyenv root)/versions/3.10.13/bin/python"
fi
RASA="$WORK/venv/bin/rasa"

mkdir -p "$WORK"
if [[ ! -x "$RASA" ]]; then
  echo ">> creating the Rasa venv in $WORK/venv (Python $("$PY310" -V 2>&1))" >&2
  "$PY310" -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install --quiet --upgrade "pip<24.1" wheel
  "$WORK/venv/bin/python" -m pip install --quiet "rasa==3.6.21"
fi

echo ">> rasa train nlu (config.yml + data/ of $ROOT/nlu, unchanged)" >&2
rm -rf "$WORK/models"
t0=$(date +%s)
( cd "$WORK" && "$RASA" train nlu --config "$ROOT/nlu/config.yml" --nlu "$ROOT/nlu/data" \
    --out "$WORK/models" --fixed-model-name sanad-nlu >"$WORK/train.log" 2>&1 ) || {
  tail -50 "$WORK/train.log" >&2; exit 1; }
echo ">> trained in $(( $(date +%s) - t0 )) s" >&2

echo ">> starting rasa run --enable-api on 127.0.0.1:$PORT" >&2
( cd "$WORK" && exec "$RASA" run --enable-api --model "$WORK/models/sanad-nlu.tar.gz" \
    --interface 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 ) &
RASA_PID=$!
trap 'kill "$RASA_PID" 2>/dev/null || true; wait "$RASA_PID" 2>/dev/null || true' EXIT

"$SANAD_PY" - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/"
deadline = time.time() + 300
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(1)
sys.exit("Rasa server did not come up in 300 s (see server.log)")
PY
echo ">> Rasa is up; evaluating both systems on $HELDOUT" >&2

"$SANAD_PY" "$ROOT/bench/nlu.py" --data "$HELDOUT" --url "http://127.0.0.1:$PORT" \
  --repeat 3 >"$WORK/compare.json"

"$SANAD_PY" - "$WORK/compare.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
emb, http = d["embedded"], d["http"]
rasa, rasa_net = http["server_answer"], http["with_sanad_safety_net"]
rows = [("accuracy", emb["accuracy"], rasa["accuracy"], rasa_net["accuracy"]),
        ("macro F1", emb["macro_f1"], rasa["macro_f1"], rasa_net["macro_f1"])]
for v in sorted(emb["per_variety"]):
    rows.append((f"  {v}", emb["per_variety"][v], rasa["per_variety"].get(v),
                 rasa_net["per_variety"].get(v)))
for k in ("recall", "precision"):
    rows.append((f"emergency {k}", emb["emergency"][k], rasa["emergency"][k],
                 rasa_net["emergency"][k]))
fmt = lambda x: "   n/a" if x is None else f"{x:6.3f}"
print(f"{'held-out (' + str(emb['examples']) + ')':24} {'embedded':>9} {'rasa':>9} {'rasa+net':>9}")
for name, a, b, c in rows:
    print(f"{name:24} {fmt(a):>9} {fmt(b):>9} {fmt(c):>9}")
print(f"{'parse p50 / p99 (ms)':24} {emb['p50_ms']:.2f}/{emb['p99_ms']:.2f} (in-process)  "
      f"rasa {http['p50_ms']:.1f}/{http['p99_ms']:.1f} (HTTP)")
print(f"{'load warm / cold (s)':24} {emb['load_warm_s']}/{emb['load_cold_s']}")
if http["failures"]:
    print(f"WARNING: {http['failures']} Rasa requests failed")
PY
