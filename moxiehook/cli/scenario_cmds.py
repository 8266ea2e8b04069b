"""``scenario list | show | run | validate | from-log``: related events fired in order.

The format and the rules live in ``moxiehook.scenario``; this module parses options, renders
every step before anything is sent, and shows what the run did (one line per step on stdout,
the summary on stderr, or one JSON document with ``--json``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from moxiehook import scenario as scn
from moxiehook.cli.help import Command, Group
from moxiehook.cli.options import JsonOption
from moxiehook.cli.render import Column, command, escape_control, info, print_json, print_table
from moxiehook.cli.run_view import (
    already_disabled_warning,
    app_output_to_stderr,
    live_run,
    load_app_quietly,
    show_preview,
    summary_line,
)
from moxiehook.cli.state import state
from moxiehook.errors import MoxiehookError, NothingSentError, UsageError

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True,
                  help="Scenarios: related events fired in order, their payloads referring to each other.")

# --repeat is bounded: each run is rendered, sent and logged in turn (memory stays flat), but a
# number past this is a typo or a load test, which `fire --rate` and Locust do properly.
MAX_REPEAT = 10_000
MAX_LAST = 10_000  # --last: records read (their events, at most a scenario's 1,000 steps, become steps)

NameArgument = Annotated[str, typer.Argument(metavar="NAME|FILE", show_default=False,
                                             help="A built-in scenario, one in ./scenarios/, or a TOML file.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="STEP:PATH=VALUE", show_default=False,
    help="Change a step's payload before later steps read it: PATH as fire --set; VALUE JSON, else a string; "
         "may hold ${…} references (repeatable).")]
SeedOption = Annotated[int | None, typer.Option(
    "--seed", show_default=False, help="Draw ${oid} values and varied copies from this seed: the same seed, "
                                       "the same story.")]
VaryOption = Annotated[bool, typer.Option("--vary", help="Make each step's payload a varied copy (references hold).")]
SkipOption = Annotated[list[str] | None, typer.Option(
    "--skip", metavar="STEP", show_default=False, help="Leave this step out (repeatable); a later step reading it "
                                                       "is an error.")]


def _render(name: str, set_: list[str] | None, skip: list[str] | None, seed: int | None, vary: bool,
            index: int = 0) -> scn.Rendered:
    scenario = scn.find_scenario(name)
    overrides = [scn.parse_override(text) for text in set_ or []]
    return scn.render(scenario, overrides=overrides, skip=skip or (), seed=seed, vary=True if vary else None,
                      index=index)


@app.command("list", cls=Command)
def list_(as_json: JsonOption = False) -> None:
    """The built-in scenarios and those in ./scenarios/."""
    listed = scn.list_scenarios()
    if as_json:
        print_json([{"name": s.name, "source": s.source, "description": s.description, "steps": s.steps,
                     "error": s.error} for s in listed])
        return
    rows = [(s.name, s.source, str(s.steps) if s.error is None else "!",
             s.description if s.error is None else f"error: {s.error}") for s in listed]
    print_table([Column("name", shrink=""), Column("source", shrink="middle", drop=1), Column("steps", drop=2),
                 Column("description", min_width=12)], rows)


@app.command("show", cls=Command)
def show(
    name: NameArgument,
    set_: SetOption = None,
    skip: SkipOption = None,
    seed: SeedOption = None,
    vary: VaryOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print each step's payload as it would be sent (references resolved)."""
    rendered = _render(name, set_, skip, seed, vary)
    if as_json:
        print_json({"scenario": rendered.scenario.name, "seed": rendered.seed, "vary": rendered.vary,
                    "steps": [{"name": s.step.name, "event": s.step.event, "payload": s.payload}
                              for s in rendered.steps]})
        return
    out = sys.stdout
    for item in rendered.steps:
        extra = f" · after {item.step.delay_text}" if item.step.delay_text else ""
        out.write(f"# step {item.step.name} · {item.step.event}{extra}\n")
        out.write(json.dumps(item.payload, indent=2, ensure_ascii=False) + "\n\n")
    info(f"scenario {rendered.scenario.name}: {len(rendered.steps)} step(s), seed {rendered.seed}"
         f"{' (varied)' if rendered.vary else ''}")


@app.command("validate", cls=Command)
def validate(
    name: NameArgument,
    set_: SetOption = None,
    skip: SkipOption = None,
    seed: SeedOption = None,
    vary: VaryOption = False,
    as_json: JsonOption = False,
) -> None:
    """Render every step and check it against its event's schema (exit 2 naming the step and field)."""
    rendered = _render(name, set_, skip, seed, vary)
    checks = scn.validate(rendered)
    problems = [(c, where, what) for c in checks for where, what in c.problems]
    if as_json:
        print_json({"scenario": rendered.scenario.name, "seed": rendered.seed, "vary": rendered.vary,
                    "valid": not problems,
                    "steps": [{"name": c.name, "event": c.event, "checked": c.checked,
                               "problems": [{"path": p, "error": e} for p, e in c.problems]} for c in checks]})
    else:
        for check in checks:
            if not check.checked:
                info(f"step {check.name!r} ({check.event}): not checked, the event has no schema in the catalog")
        for check, where, what in problems:
            info(escape_control(f"✗ step {check.name!r} ({check.event}): {where}: {what}"))
        if not problems:
            info(f"scenario {rendered.scenario.name}: {len(checks)} step(s) valid (seed {rendered.seed}"
                 f"{', varied' if rendered.vary else ''})")
    if problems:
        first = problems[0]
        raise scn.ScenarioError(f"step {first[0].name!r} breaks the {first[0].event} schema at {first[1]}: "
                                f"{first[2]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


@app.command("run", cls=Command)
def run(
    ctx: typer.Context,
    name: NameArgument,
    endpoint: Annotated[list[str] | None, typer.Option(
        "--endpoint", show_default=False, help="Only this endpoint (repeatable; default: every one mapping the "
                                               "step's event).")] = None,
    set_: SetOption = None,
    skip: SkipOption = None,
    repeat: Annotated[int, typer.Option("--repeat", metavar="N", help=f"Run the scenario N times in turn, each "
                                        f"with ids of its own (at most {MAX_REPEAT:,}).")] = 1,
    seed: SeedOption = None,
    vary: VaryOption = False,
    app_spec: Annotated[str | None, typer.Option(
        "--app", metavar="MODULE:ATTR", show_default=False,
        help="Deliver into this WSGI/ASGI app in-process, at each mapped URL's path.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the requests (secrets masked); send nothing.")]
    = False,
    as_json: JsonOption = False,
) -> None:
    """Fire the steps in order to every endpoint mapping their events; a failed step stops the run."""
    if repeat < 1 or repeat > MAX_REPEAT:
        raise UsageError(f"--repeat must be 1 to {MAX_REPEAT:,}, got {repeat:,} (for a load, see: moxiehook fire "
                         "--rate)")
    if dry_run and repeat > 1:
        raise UsageError("--dry-run shows one run's requests: drop --repeat")
    given_seed = seed is not None
    if seed is None:
        from moxiehook import catalog

        seed = catalog.new_seed()
    first = _render(name, set_, skip, seed, vary)
    target = None
    if app_spec is not None:
        target = load_app_quietly(app_spec)
    config_path = state(ctx).config_path
    config = state(ctx).load()
    plans = scn.plan(config, first, endpoint)
    if dry_run:
        _dry_run(config, first, plans, as_json)
        return
    names = list(dict.fromkeys(e.name for p in plans.values() for e, _ in p))
    if not given_seed:
        info(f"scenario {first.scenario.name}: seed {first.seed} (the same story again: --seed {first.seed})")
    codes: list[int] = []
    with contextlib.ExitStack() as stack:
        sender = None
        if target is not None:
            from moxiehook.testing import AppSender

            sender = stack.enter_context(contextlib.closing(AppSender(target)))
        documents = _runs(config_path, config, first, name, set_, skip, seed, vary, repeat, endpoint, names,
                          sender, codes)
        if as_json:
            _print_documents(documents, repeat)
        else:
            for _ in documents:
                pass
    raise typer.Exit(max(codes, key=_severity) if codes else 0)


def _severity(code: int) -> int:
    """Which exit code a --repeat series reports: Ctrl-C, then failures, then nothing sent, then success."""
    return {130: 4, 1: 3, 2: 3, 3: 2, 0: 0}.get(code, 3)


def _runs(config_path: Path, config: Any, first: scn.Rendered, name: str, set_: list[str] | None,
          skip: list[str] | None, seed: int, vary: bool, repeat: int, endpoint: list[str] | None,
          names: list[str], sender: Any, codes: list[int]) -> Iterator[dict[str, Any]]:
    """Each run in turn (rendered as it starts, so --repeat holds one run in memory); its JSON document."""
    for index in range(repeat):
        rendered = first if index == 0 else _render(name, set_, skip, seed, vary, index)
        plans = scn.plan(config, rendered, endpoint)
        # What an --app prints goes to stderr: stdout holds only the result (the --json document).
        with live_run(None, concurrency=1, endpoints=names) as options, \
                (app_output_to_stderr() if sender is not None else contextlib.nullcontext()):
            options.sender = sender
            result = scn.run_scenario(config_path, config, rendered, plans, options, in_process=sender is not None)
        codes.append(result.exit_code)
        _show_run(result, index, repeat)
        yield result.to_dict()
        if result.summary.interrupted:
            return


def _show_run(result: scn.ScenarioRun, index: int, repeat: int) -> None:
    """One line per step (stdout, unless --json), then the summary line (stderr)."""
    summary = result.summary
    for endpoint, reason in summary.already_disabled.items():
        info(already_disabled_warning(endpoint, reason))
    prefix = f"[{index + 1}/{repeat}] " if repeat > 1 else ""
    for step in result.steps:
        mark = {"delivered": "✓", "failed": "✗"}.get(step.outcome, "-")
        sent = len([r for r in step.records if r.outcome != "skipped"])
        detail = f"{sent} sent" if step.outcome == "delivered" else (step.error or step.outcome)
        line = escape_control(f"{prefix}{mark} {step.name} · {step.event} · {step.outcome} · {detail}")
        info(line)
    info(f"{prefix}scenario {result.scenario} · run {result.run} · {summary_line(summary)}")


def _print_documents(documents: Iterator[dict[str, Any]], repeat: int) -> None:
    """One run: its document. ``--repeat N``: a JSON array, each run's document written as it ends."""
    if repeat == 1:
        for document in documents:
            print_json(document)
        return
    write = sys.stdout.write
    shown = 0
    try:
        for document in documents:
            text = json.dumps(document, indent=2, ensure_ascii=False)
            write(("[\n" if shown == 0 else ",\n") + "  " + text.replace("\n", "\n  "))
            sys.stdout.flush()
            shown += 1
    except (MoxiehookError, KeyboardInterrupt):
        if shown:  # a later run could not start (the log became unwritable, Ctrl-C): the runs that ended stay JSON
            write("\n]\n")
        raise
    write("\n]\n" if shown else "[]\n")


def _dry_run(config: Any, rendered: scn.Rendered, plans: dict[str, Any], as_json: bool) -> None:
    """Each step's requests as ``fire --dry-run`` prints them; nothing is sent or logged."""
    from moxiehook import ids
    from moxiehook.send import Job, preview_jobs

    skipped = {e.name: e for p in plans.values() for e, _ in p if not e.enabled}
    for off in skipped.values():
        info(already_disabled_warning(off.name, off.why_disabled))
    live = {step: [(e, m) for e, m in plan if e.enabled] for step, plan in plans.items()}
    if not any(live.values()):
        raise NothingSentError("nothing would be sent: every endpoint mapping the scenario's events is disabled")
    names = list(dict.fromkeys(e.name for p in live.values() for e, _ in p))

    def jobs() -> Iterator[Job]:
        for item in rendered.steps:
            event_id = ids.event_id()
            for endpoint, mapping in live[item.step.name]:
                yield Job(endpoint.name, item.step.event, mapping.url, item.payload, event_id, scn.MODE)

    def requests() -> Iterator[dict[str, Any]]:
        steps = iter(item for item in rendered.steps for _ in live[item.step.name])
        for request, item in zip(preview_jobs(config, jobs(), names), steps, strict=True):
            if as_json:
                yield {"step": item.step.name, **request}
            else:
                sys.stdout.write(f"# step {item.step.name} · {item.step.event}\n")
                yield request

    show_preview(requests(), as_json)


@app.command("from-log", cls=Command)
def from_log(
    ctx: typer.Context,
    ids_: Annotated[list[str] | None, typer.Argument(metavar="[ID]...", show_default=False,
                                                        help="Logged deliveries (ids as logs shows them).")] = None,
    last: Annotated[int | None, typer.Option("--last", metavar="N", show_default=False,
                                                help="The newest N deliveries of the log.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", show_default=False,
        help="The scenario file to write (default: scenarios/from-log-TIME.toml); bodies go to JSON files "
             "beside it.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
) -> None:
    """Make a scenario of logged deliveries (e.g. traffic relayed by listen --forward-to), one step per event."""
    from moxiehook import log as logquery
    from moxiehook.cli.logs_cmds import current_log
    from moxiehook.config import write_atomic
    from moxiehook.log import DeliveryRecord

    if bool(ids_) == (last is not None):
        raise UsageError("scenario from-log needs delivery ids or --last N (not both)")
    if last is not None and not 1 <= last <= MAX_LAST:
        raise UsageError(f"--last must be 1 to {MAX_LAST:,}, got {last:,}")
    path = current_log(ctx)
    bad: list[int] = []
    if ids_:
        found = logquery.find_many(path, ids_, bad.append)
        entries = [found[text] for text in dict.fromkeys(ids_)]
    else:
        entries = logquery.tail(path, last or 0, logquery.LogFilter(), bad.append)
    if bad:
        info(f"warning: skipped {len(bad)} line(s) of {path} that are not records (first: line {bad[0]})")
    records = [e.record for e in entries if isinstance(e.record, DeliveryRecord)]
    if not records:
        raise NothingSentError(f"no delivery in {path} to make a scenario of")
    target = output or Path("scenarios") / f"from-log-{time.strftime('%Y%m%d-%H%M%S')}.toml"
    if target.suffix != ".toml":
        raise UsageError(f"-o {target}: a scenario file ends in .toml")
    made = scn.from_records(records, target.stem, target.stem, f"{len(records)} logged deliveries from {path}")
    files = [(target.parent / name, text) for name, text in made.files] + [(target, made.toml)]
    existing = [str(p) for p, _ in files if p.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing[:3])}{' …' if len(existing) > 3 else ''} already exist(s): "
                         "pass --force to overwrite, or -o another file")
    target.parent.mkdir(parents=True, exist_ok=True)
    for file, text in files:
        write_atomic(file, text)
    sys.stdout.write(f"{target}\n")
    info(f"wrote {target} ({made.steps} step(s)) and {len(made.files)} data file(s) beside it; "
         f"run it with: {command(f'scenario run {target}')}")
