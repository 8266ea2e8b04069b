"""``--json`` is streamed: a run's memory does not grow with the number of deliveries.

The per-delivery records go to the log and, as each ends, into the ``--json``
document on stdout; none is held for the report. Measured as the peak RSS of a
real process at two sizes (a memory-flatness property, not a timing): before
streaming, ``fire --count 10000 --json`` peaked at about 250 MB against about
45 MB at 1,000.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MEASURE = ("import resource, sys\nfrom moxiehook.cli import main\n"
           "try:\n    main()\nfinally:\n"
           "    sys.stderr.write('maxrss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")

APP = """
def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("204 No Content", [])
    return []
"""

MARGIN_MIB = 40  # generous: allocator noise and lazily grown caches, far below the ~200 MB a held list costs


def peak_rss_mib(tmp_path: Path, config: Path, *args: str, codes: tuple[int, ...] = (0,)) -> tuple[float, str]:
    result = subprocess.run([sys.executable, "-c", MEASURE, "--config", str(config), *args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode in codes, result.stderr[-2000:]
    return int(result.stderr.rsplit("maxrss_kib=", 1)[1].split()[0]) / 1024, result.stdout


def with_app(tmp_path: Path, config_path: Path) -> None:
    (tmp_path / "flat_app.py").write_text(APP)
    config_path.write_text(config_path.read_text() + '\n[endpoints.crm]\nauth = { type = "none" }\n'
                           '[[endpoints.crm.mappings]]\nevent = "ClientCreate"\n'
                           'url = "https://crm.example.com/hooks/clients"\n')


def test_fire_count_json_peak_memory_does_not_grow_with_count(tmp_path: Path, config_path: Path) -> None:
    with_app(tmp_path, config_path)
    small, small_out = peak_rss_mib(tmp_path, config_path, "fire", "ClientCreate", "--app", "flat_app:app",
                                    "--count", "1000", "--json")
    large, large_out = peak_rss_mib(tmp_path, config_path, "fire", "ClientCreate", "--app", "flat_app:app",
                                    "--count", "5000", "--json")
    document = json.loads(large_out)  # still one JSON document, with every delivery
    assert (document["delivered"], len(document["deliveries"])) == (5000, 5000)
    assert len({d["id"] for d in document["deliveries"]}) == 5000
    assert json.loads(small_out)["delivered"] == 1000
    print(f"peak RSS: {small:.0f} MiB at 1,000, {large:.0f} MiB at 5,000")
    assert large < small + MARGIN_MIB, (small, large)


def test_a_load_run_json_peak_memory_does_not_grow_with_its_duration(tmp_path: Path, config_path: Path) -> None:
    """--rate 4000 for 0.5 s and for 2 s (four times the deliveries): the --json document streams its
    records (the run's own figures, one float per delivery for the percentiles, are a few hundred KB)."""
    with_app(tmp_path, config_path)
    args = ("fire", "ClientCreate", "--app", "flat_app:app", "--rate", "4000", "--json", "--duration")
    # exit 1 is a load run that fell short of its rate on a busy machine: memory is what is measured here
    short, short_out = peak_rss_mib(tmp_path, config_path, *args, "0.5s", codes=(0, 1))
    long, long_out = peak_rss_mib(tmp_path, config_path, *args, "2s", codes=(0, 1))
    document = json.loads(long_out)
    assert len(document["deliveries"]) == document["load"]["sent"] > 1500
    assert json.loads(short_out)["load"]["sent"] > 0
    print(f"peak RSS: {short:.0f} MiB for 0.5 s, {long:.0f} MiB for 2 s ({document['load']['sent']} sent)")
    assert long < short + MARGIN_MIB, (short, long)
