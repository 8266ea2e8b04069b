#!/usr/bin/env bash
# CI-only: does moxiehook still work with the newest typer, beyond the pin in pyproject.toml?
#
# Builds a throw-away venv, installs this checkout and then the newest typer over the pin,
# runs `moxiehook --help`, a usage error, a command that builds a group (`endpoint list`)
# and the command reference generator, and compares the start-up of `moxiehook endpoint list`
# with the pinned typer's (the pin stays while the newest typer imports pydantic when it
# builds a command). Needs network access to the package index; takes about a minute.
#
#   bench/newest_typer.sh            # exit 0: the CLI works with the newest typer
#   RUNS=20 bench/newest_typer.sh    # more start-up runs
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
runs="${RUNS:-10}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/pinned"
"$work/pinned/bin/pip" install -q "$here"
"$python" -m venv "$work/newest"
"$work/newest/bin/pip" install -q "$here"
"$work/newest/bin/pip" install -q --upgrade typer  # over the pin: pip says the pin is not met, on purpose
echo "pinned typer $("$work/pinned/bin/python" -c 'import typer; print(typer.__version__)')," \
     "newest typer $("$work/newest/bin/python" -c 'import typer; print(typer.__version__)')"

cd "$work"
"$work/newest/bin/moxiehook" init >/dev/null 2>&1
for venv in pinned newest; do
    bin="$work/$venv/bin"
    "$bin/moxiehook" --help >/dev/null
    "$bin/moxiehook" endpoint list >/dev/null
    "$bin/moxiehook" fire --help >/dev/null
    set +e
    "$bin/moxiehook" fier 2>"$work/err"; code=$?
    set -e
    [ "$code" = 2 ] && grep -q "did you mean 'fire'" "$work/err" || { echo "$venv: usage error broken"; cat "$work/err"; exit 1; }
    "$bin/python" -m moxiehook.cli.reference >"$work/reference-$venv.md"
done
if ! diff -q "$work/reference-pinned.md" "$work/reference-newest.md" >/dev/null; then
    echo "note: the generated reference differs under the newest typer:"
    diff "$work/reference-pinned.md" "$work/reference-newest.md" | head -20 || true
fi

# Start-up: the best of $runs runs of `moxiehook endpoint list`, each typer, interleaved.
"$python" - "$work" "$runs" <<'PY'
import subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
best = {"pinned": float("inf"), "newest": float("inf")}
for _ in range(runs):
    for venv in best:
        started = time.perf_counter()
        subprocess.run([f"{work}/{venv}/bin/moxiehook", "endpoint", "list"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        best[venv] = min(best[venv], time.perf_counter() - started)
print(f"start-up (endpoint list, best of {runs}): pinned {best['pinned'] * 1000:.0f} ms, "
      f"newest {best['newest'] * 1000:.0f} ms, ratio {best['newest'] / best['pinned']:.2f}x")
PY
echo "ok: the CLI works with the newest typer"
