"""The scenario file format and its references, attacked: every bad input is exit 2, one clear line,
before anything is sent (each test here sends nothing, and a receiver would notice if it did)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moxiehook import scenario as scn
from moxiehook.errors import MoxiehookError

HEAD = 'name = "t"\n'


def write(tmp_path: Path, text: str, name: str = "t.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def show(cli: Any, path: Path, *args: str) -> Any:
    result = cli("scenario", "show", str(path), "--json", *args)
    return result


def payloads(cli: Any, path: Path, *args: str) -> dict[str, Any]:
    result = show(cli, path, *args)
    assert result.exit_code == 0, result.stderr
    return {s["name"]: s["payload"] for s in json.loads(result.stdout)["steps"]}


def refused(cli: Any, path: Path, *fragments: str, args: tuple[str, ...] = ()) -> str:
    result = show(cli, path, *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- references -----------------------------------------------------------------------------

def test_a_whole_reference_keeps_its_json_type_and_a_partial_one_is_text(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """
[vars]
rate = 150
flag = true
nothing = ""
obj = { a = [1, 2] }

[[steps]]
name = "client"
event = "ClientCreate"
set = { hourlyAmount = "${vars:rate}", archive = "${vars:flag}", name = "Rate ${vars:rate}/h ${vars:obj}" }

[[steps]]
name = "project"
event = "ProjectCreate"
set.clientId = "${client:id}"
set."client.hourlyAmount" = "${client:hourlyAmount}"
set."client.contact" = "${vars:obj}"
set.name = "$${not a ref} ${client:contacts[0].email}"
""")
    got = payloads(cli, path)
    assert got["client"]["hourlyAmount"] == 150 and got["client"]["archive"] is True
    assert got["client"]["name"] == 'Rate 150/h {"a":[1,2]}'
    assert got["project"]["clientId"] == got["client"]["id"]
    assert got["project"]["client"]["hourlyAmount"] == 150
    assert got["project"]["client"]["contact"] == {"a": [1, 2]}
    assert got["project"]["name"] == "${not a ref} " + got["client"]["contacts"][0]["email"]


def test_oid_is_fresh_per_use_once_per_var_and_fixed_by_the_seed(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """
[vars]
client = "${oid}"

[[steps]]
name = "a"
event = "ClientCreate"
[steps.set]
id = "${vars:client}"
"contacts[0].clientId" = "${vars:client}"
"contacts[0].id" = "${oid}"
taxId = "${oid}"
""")
    one = payloads(cli, path, "--seed", "7")["a"]
    assert one["id"] == one["contacts"][0]["clientId"]
    assert len({one["id"], one["contacts"][0]["id"], one["taxId"]}) == 3
    assert all(len(v) == 24 and int(v, 16) >= 0 for v in (one["id"], one["taxId"]))
    assert payloads(cli, path, "--seed", "7")["a"] == one
    assert payloads(cli, path, "--seed", "8")["a"]["id"] != one["id"]


def test_now_is_an_iso_utc_time(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[[steps]]\nevent = "ClientCreate"\nset = { name = "${now}" }\n')
    name = payloads(cli, path)["ClientCreate"]["name"]
    assert name.endswith("Z") and name[4] == "-" and "T" in name


def test_a_set_on_the_command_line_is_read_by_later_steps(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """
[[steps]]
name = "client"
event = "ClientCreate"
set = { name = "From the file" }

[[steps]]
name = "project"
event = "ProjectCreate"
set = { "client.name" = "${client:name}", "client.hourlyAmount" = "${client:hourlyAmount}" }
""")
    got = payloads(cli, path, "--set", "client:name=Changed", "--set", "client:hourlyAmount=99",
                   "--set", "project:name=${client:name} project")
    assert got["project"]["client"]["name"] == "Changed"
    assert got["project"]["client"]["hourlyAmount"] == 99
    assert got["project"]["name"] == "Changed project"


@pytest.mark.parametrize(("setting", "fragments"), [
    ('name = "${clinet:name}"', ("step 'project'", "${clinet:name}", "did you mean 'client'")),
    ('name = "${client:nmae}"', ("step 'client'", "payload has no nmae", "did you mean 'name'")),
    ('name = "${client:contacts[9].email}"', ("contacts[9]", "past the end")),
    ('name = "${client:name.first}"', ("name of step 'client' is a string",)),
    ('name = "${client:contacts.email}"', ("is an array", "[0]")),
    ('name = "${vars:rte}"', ("no var 'rte'", "did you mean 'rate'")),
    ('name = "${project:name}"', ("refers to the step itself",)),
    ('name = "${later:name}"', ("comes later",)),
    ('name = "${client:id"', ("no closing '}'", "$${")),
    ('name = "${oidd}"', ("not a reference", "did you mean 'oid'")),
    ('name = "${}"', ("not a reference",)),
    ('name = "${client:}"', ("names no field",)),
    ('name = "${:id}"', ("names no step",)),
    ('name = "${client:a..b}"', ("empty part",)),
])
def test_a_bad_reference_is_exit_2_naming_it(cli: Any, tmp_path: Path, setting: str,
                                              fragments: tuple[str, ...]) -> None:
    path = write(tmp_path, HEAD + f"""
[vars]
rate = 1

[[steps]]
name = "client"
event = "ClientCreate"

[[steps]]
name = "project"
event = "ProjectCreate"
set = {{ {setting} }}

[[steps]]
name = "later"
event = "ProjectUpdate"
""")
    refused(cli, path, *fragments)


def test_a_cycle_between_vars_is_named(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[vars]\na = "${vars:b}"\nb = "x${vars:c}"\nc = "${vars:a}"\n'
                 '[[steps]]\nevent = "ClientCreate"\n')
    refused(cli, path, "cycle", "a -> b -> c -> a")
    path = write(tmp_path, HEAD + '[vars]\nme = "${vars:me}"\n[[steps]]\nevent = "ClientCreate"\n')
    refused(cli, path, "vars.me refers to itself")


def test_a_var_cannot_read_a_step(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[vars]\nx = "${client:id}"\n[[steps]]\nname = "client"\nevent = "ClientCreate"\n')
    refused(cli, path, "a var cannot refer to a step")


def test_skipping_a_step_that_a_later_one_reads_is_refused(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[[steps]]\nname = "client"\nevent = "ClientCreate"\n'
                 '[[steps]]\nname = "project"\nevent = "ProjectCreate"\nset = { clientId = "${client:id}" }\n')
    refused(cli, path, "--skip leaves out", "'client'", args=("--skip", "client"))
    assert list(payloads(cli, path, "--skip", "client", "--skip", "project")) == []
    refused(cli, path, "--skip 'clinet'", "did you mean 'client'", args=("--skip", "clinet"))
    refused(cli, path, "--set 'clinet'", "did you mean 'client'", args=("--set", "clinet:name=x"))
    refused(cli, path, "STEP:PATH=VALUE", args=("--set", "name=x"))


# --- the file -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "fragments"), [
    ('name = "t"\n[[steps]]\nevent = "ClientCreate"\nsett = {}\n', ("unknown key 'sett'", "did you mean 'set'")),
    ('nmae = "t"\n[[steps]]\nevent = "ClientCreate"\n', ("unknown key 'nmae'", "did you mean 'name'")),
    ('[[steps]]\nevent = "ClientCreate"\nexpect = { stauts = 200 }\n', ("did you mean 'status'",)),
    ('[[steps]]\nevent = "ClientCreate"\nexpect = { status = 99 }\n', ("100-599",)),
    ('[[steps]]\nevent = "ClientCreate"\nexpect = { status = [] }\n', ("100-599",)),
    ('[[steps]]\nevent = "ClientCreate"\nexpect = { status = true }\n', ("100-599",)),
    ('[[steps]]\nevent = "ClientCreate"\ndelay = "7d"\n', ("at most an hour",)),
    ('[[steps]]\nevent = "ClientCreate"\ndelay = "soon"\n', ("not a duration",)),
    ('[[steps]]\nevent = "ClientCreate"\ndelay = true\n', ("delay must be a duration",)),
    ('[[steps]]\nevent = "ClientCreate"\ncontinue_on_failure = "yes"\n', ("true or false",)),
    ('[[steps]]\nevent = "ClientCreat"\n', ("did you mean ClientCreate",)),
    ('[[steps]]\nevent = "MyOwnEvent"\n', ("data file",)),
    ('[[steps]]\nevent = "Client\\nCreate"\n', ("steps[0]",)),
    ('[[steps]]\nname = "a:b"\nevent = "ClientCreate"\n', ("step name 'a:b'",)),
    ('[[steps]]\nname = "vars"\nevent = "ClientCreate"\n', ("not vars",)),
    ('[[steps]]\nevent = "ClientCreate"\n[[steps]]\nevent = "ClientCreate"\n', ("both called 'ClientCreate'",
                                                                             "give one of them a name")),
    ('name = "t"\n', ("at least one step",)),
    ('steps = []\n', ("at least one step",)),
    ('steps = "x"\n', ("array of tables",)),
    ('vars = 3\n[[steps]]\nevent = "ClientCreate"\n', ("vars must be a table",)),
    ('vary = "yes"\n[[steps]]\nevent = "ClientCreate"\n', ("vary must be true or false",)),
    ('[vars]\nx = inf\n[[steps]]\nevent = "ClientCreate"\n', ("vars.x", "not a JSON number")),
    ('[[steps]]\nevent = "ClientCreate"\nset = { hourlyAmount = nan }\n', ("not a JSON number",)),
    ('[[steps]]\nevent = "ClientCreate"\nset = { a = [1, { b = -inf }] }\n', ("a[1].b", "not a JSON number")),
    ('[[steps]]\nevent = "ClientCreate"\nset = { dateCreated = 2026-01-01T00:00:00Z }\n', ("TOML date", "quote")),
    ('[[steps]]\nevent = "ClientCreate"\nset = { "contacts[x]" = 1 }\n', ("contacts[x]",)),
    ('[[steps]]\nevent = "ClientCreate"\nset = { "a..b" = 1 }\n', ("empty part",)),
    ('[[steps]]\nevent = "ClientCreate"\nset = { "contacts[7].email" = "x" }\n', ("past the end",)),
    ('[[steps]]\nevent = "ClientCreate"\nset = { "name.first" = "x" }\n', ("name is a string",)),
    ('[[steps]]\nevent = "ClientCreate"\nset = 3\n', ("set must be a table",)),
    ('[[steps]]\nevent = "ClientCreate"\ndata = "missing.json"\n', ("no such file",)),
    ('name = "t"\n[[steps]\nevent = "ClientCreate"\n', ("not valid TOML", "line 2")),
    ('name = "t"\nname = "u"\n', ("not valid TOML",)),
    ('[[steps]]\nevent = "ClientCreate"\nset = { name = """unterminated }\n', ("not valid TOML",)),
])
def test_a_bad_file_is_exit_2_naming_the_key(cli: Any, tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    refused(cli, write(tmp_path, text), *fragments)


def test_a_file_that_is_not_utf8_or_not_a_file(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes('name = "café"\n[[steps]]\nevent = "ClientCreate"\n'.encode("latin-1"))
    refused(cli, path, "not UTF-8")
    refused(cli, tmp_path / "nope.toml", "no scenario file")
    (tmp_path / "dir.toml").mkdir()
    refused(cli, tmp_path / "dir.toml", "is a folder")
    big = tmp_path / "big.toml"
    big.write_text('name = "t"\n# ' + "x" * (2 * 1024 * 1024) + '\n[[steps]]\nevent = "ClientCreate"\n')
    refused(cli, big, "at most 1024 KiB")


def test_a_bom_and_crlf_file_is_read(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfname = "t"\r\n[[steps]]\r\nevent = "ClientCreate"\r\n'
                     b'set = { name = "\xc3\xa9" }\r\n')
    assert payloads(cli, path)["ClientCreate"]["name"] == "é"


def test_data_files_are_read_beside_the_scenario_and_strictly(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "story"
    folder.mkdir()
    (folder / "body.json").write_text('{"id": "abc", "n": null, "deep": {"x": [1]}}')
    (folder / "nan.json").write_text('{"n": NaN}')
    (folder / "bad.json").write_bytes(b'{"n": "\xff"}')
    path = write(folder, HEAD + '[[steps]]\nname = "a"\nevent = "MyOwnEvent"\ndata = "body.json"\n'
                 'set = { "deep.x[0]" = 2 }\n'
                 '[[steps]]\nname = "b"\nevent = "MyOtherEvent"\ndata = "body.json"\nset = { id = "${a:deep}" }\n')
    got = payloads(cli, path)
    assert got["a"] == {"id": "abc", "n": None, "deep": {"x": [2]}}
    assert got["b"]["id"] == {"x": [2]}
    refused(cli, write(folder, HEAD + '[[steps]]\nevent = "E"\ndata = "nan.json"\n', "n.toml"), "NaN")
    refused(cli, write(folder, HEAD + '[[steps]]\nevent = "E"\ndata = "bad.json"\n', "b.toml"), "not UTF-8")


def test_a_deeply_nested_value_is_refused_not_crashed(cli: Any, tmp_path: Path) -> None:
    deep = "[" * 300 + "]" * 300
    path = write(tmp_path, HEAD + f'[[steps]]\nevent = "ClientCreate"\nset = {{ name = {deep} }}\n')
    refused(cli, path, "nests")


def test_a_step_name_defaults_to_its_event_and_unknown_names_suggest(cli: Any, tmp_path: Path) -> None:
    result = cli("scenario", "show", "project-to-paymnet")
    assert result.exit_code == 2 and "did you mean 'project-to-payment'" in result.stderr


def test_the_scenarios_folder_is_listed_and_found_by_name(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "mine.toml").write_text('description = "my story"\n[[steps]]\nevent = "ClientCreate"\n')
    (folder / "broken.toml").write_text("[[steps\n")
    result = cli("scenario", "list", "--json")
    listed = {s["name"]: s for s in json.loads(result.stdout)}
    assert listed["mine"]["description"] == "my story" and listed["mine"]["steps"] == 1
    assert "not valid TOML" in listed["broken"]["error"]
    assert {"client-lifecycle", "project-to-payment", "meeting-lifecycle", "agreement-signing",
            "task-workflow"} <= set(listed)
    assert payloads(cli, Path("mine"))["ClientCreate"]["id"]


def test_the_parser_raises_moxiehook_errors_only() -> None:
    """Garbage of every kind: never anything but a ScenarioError (or another MoxiehookError)."""
    import random

    rng = random.Random(5)
    pieces = ['[[steps]]\n', 'event = "ClientCreate"\n', 'set = { name = "${', 'client:id}" }\n', '[vars]\n',
              'x = "${vars:x}"\n', 'name = 3\n', '"\\u0000" = 1\n', 'delay = "1e999s"\n', 'expect = {}\n',
              'data = "/dev/null"\n', '${oid}', '}}}', '\xff', 'é']
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        try:
            scenario = scn.parse_scenario(text.encode("utf-8", "surrogatepass"), "fuzz", Path("."), "fuzz")
            scn.render(scenario, seed=1)
        except MoxiehookError:
            pass


# --- red team: bytes that are not what they claim, files that are not files ----------------

def test_a_number_json_cannot_carry_from_the_command_line_is_refused(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + '[[steps]]\nname = "a"\nevent = "ClientCreate"\n')
    refused(cli, path, "--set 'a:hourlyAmount=1e999'", "not JSON", "--set 'a:hourlyAmount=\"1e999\"'",
            args=("--set", "a:hourlyAmount=1e999"))
    refused(cli, path, "--set 'a:hourlyAmount=-1e400'", "not JSON", args=("--set", "a:hourlyAmount=-1e400"))


def test_a_lone_surrogate_in_a_data_file_is_refused_not_a_traceback(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "sur.json").write_text('{"a": "\\ud800"}')
    path = write(tmp_path, HEAD + '[[steps]]\nname = "a"\nevent = "MyEvent"\ndata = "sur.json"\n')
    refused(cli, path, "step 'a'", "sur.json", "lone surrogate")


def test_a_fifo_is_refused_instead_of_read_forever(cli: Any, tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.toml")
    refused(cli, tmp_path / "pipe.toml", "not a regular file")
    os.mkfifo(tmp_path / "pipe.json")
    path = write(tmp_path, HEAD + '[[steps]]\nname = "a"\nevent = "MyEvent"\ndata = "pipe.json"\n')
    refused(cli, path, "step 'a'", "not a regular file")


def test_vars_that_double_each_other_are_stopped_before_memory_runs_out(cli: Any, tmp_path: Path) -> None:
    """60 vars, each two copies of the next: 2**60 characters if nothing stopped it."""
    lines = [f'v{i} = "${{vars:v{i + 1}}}${{vars:v{i + 1}}}"' for i in range(60)] + ['v60 = "xx"']
    objects = [f'o{i} = ["${{vars:o{i + 1}}}", "${{vars:o{i + 1}}}"]' for i in range(60)] + ['o60 = [1]']
    for body in (lines, objects):
        path = write(tmp_path, HEAD + "[vars]\n" + "\n".join(body) + '\n[[steps]]\nevent = "ClientCreate"\n')
        refused(cli, path, "MiB")


def test_control_characters_in_a_file_are_shown_escaped(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, '"\\u001b[31mred" = 1\n[[steps]]\nevent = "ClientCreate"\n')
    line = refused(cli, path, "unknown key")
    assert "\x1b" not in line


def test_a_scenario_name_that_would_write_to_the_terminal_is_refused(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "\\u001b]0;pwned\\u0007"\n[[steps]]\nevent = "ClientCreate"\n')
    line = refused(cli, path, "printable")
    assert "\x1b" not in line and "\x07" not in line
