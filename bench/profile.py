"""Where ``fire`` spends its time: ``python bench/profile.py [--count N] [--top N]``.

Runs ``fire ClientCreate --count N --concurrency 1`` (as the ``overhead``
benchmark does) under py-spy (``pip install py-spy``) against the fast
receiver, sampling every millisecond, and prints the functions that held the
most samples: inclusive (the function and what it called) and self (the
function's own code). Start-up is part of the run, as it is of every figure.
"""

from __future__ import annotations

import argparse
import collections
import compileall
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` and `moxiehook` importable

from bench import workload  # noqa: E402
from bench.session import FULL, Session  # noqa: E402

_FRAME = re.compile(r"(?P<function>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="events fired (default 2000)")
    parser.add_argument("--top", type=int, default=25, help="lines shown of each list (default 25)")
    parser.add_argument("--below", type=float, default=60.0,
                        help="inclusive list: only functions under this share, %% (default 60: "
                             "leaves out the chain of callers every sample has, main → fire)")
    parser.add_argument("--source", type=Path,
                        help="profile the moxiehook package in this folder instead of the installed one "
                             "(e.g. `git archive COMMIT moxiehook | tar -x -C DIR`: a before/after comparison)")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is needed: pip install py-spy", file=sys.stderr)
        return 1
    with Session(FULL, lambda line: print(line, file=sys.stderr)) as session:
        receiver = session.fast_receiver()
        config = session.config_for("profile", receiver.url())
        raw = session.folder / "profile.txt"
        moxiehook, env = session.moxiehook_argv, session.env
        if args.source is not None:
            compileall.compile_dir(args.source / "moxiehook", quiet=1)
            moxiehook, env = [sys.executable, "-m", "moxiehook"], {**env, "PYTHONPATH": str(args.source.resolve())}
        subprocess.run([py_spy, "record", "--rate", "1000", "--format", "raw", "--output", str(raw), "--",
                        *moxiehook, "--config", str(config), "fire", workload.EVENT,
                        "--count", str(args.count), "--concurrency", "1"],
                       env=env, cwd=session.folder, check=True, capture_output=True)
        for line in summary(raw.read_text(), args.top, args.below):
            print(line)
    return 0


def summary(collapsed: str, top: int, below: float = 100.0) -> list[str]:
    """The top lines of a py-spy raw (collapsed stacks) profile, inclusive and self."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        names = [_name(frame) for frame in stack.split(";")]
        for name in set(names):
            inclusive[name] += samples
        own[names[-1]] += samples
    lines = [f"{total:,} samples (1 ms each)", "", f"inclusive (under {below:g} %):"]
    shown = [(name, n) for name, n in inclusive.most_common() if 100 * n / total < below][:top]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in shown]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return lines


def _name(frame: str) -> str:
    """``send (moxiehook/send/delivery.py)``: the function and its file below site-packages or the stdlib."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    if "site-packages/" in file:
        file = file.rpartition("site-packages/")[2]
    elif "/moxiehook/" in file:
        file = "moxiehook/" + file.rpartition("/moxiehook/")[2]
    else:
        file = re.split(r"/python3\.\d+/", file)[-1]
    return f"{match['function']} ({file})"


if __name__ == "__main__":
    sys.exit(main())
