"""What ``init`` writes: a starter config with no live endpoint, or (``--sample``) the full sample.

Both come from the one ``sample-config.toml`` shipped in the package, so they
cannot drift apart: the starter is the sample's settings (every key with its
default and a comment), followed by the sample's endpoints commented out as
examples. A starter has no live endpoint on purpose: the sample's endpoints
point at ``listen``'s default port, where a walk-through's own receiver runs,
and a ``fire`` would have hit (and disabled) them.
"""

from __future__ import annotations

import re

_FIRST_ENDPOINT = re.compile(r"^\[+endpoints\.", re.MULTILINE)

EXAMPLES_HEADER = """\
# --- Endpoints ---------------------------------------------------------------------
# None is live yet. Add your own receiver with moxiehook's commands (which rewrite
# this file without its comments):
#   moxiehook endpoint add mine --token '${MY_TOKEN}'
#   moxiehook map add mine ClientCreate https://your-server.example.com/hooks/clients
# or uncomment an example below and point its URLs at your server.
# (`moxiehook init --sample` writes them live, aimed at `moxiehook listen` on 127.0.0.1:8787.)

"""


def sample_config_text() -> str:
    """The packaged ``sample-config.toml``: what ``init --sample`` writes."""
    from importlib import resources  # only init needs it: keep it out of every command's start-up

    return resources.files("moxiehook").joinpath("sample-config.toml").read_text(encoding="utf-8")


def starter_config_text() -> str:
    """What ``init`` writes: the sample's settings live, its endpoints as commented examples."""
    sample = sample_config_text()
    match = _FIRST_ENDPOINT.search(sample)
    if match is None:
        return sample
    # The comment block just above the first endpoint describes it: it moves with it.
    head = sample[: match.start()].rstrip("\n").split("\n")
    while head and head[-1].startswith("#"):
        head.pop()
    settings = "\n".join(head).rstrip("\n") + "\n\n"
    examples = sample[len("\n".join(head)) :].strip("\n")
    commented = "\n".join(line if not line or line.startswith("#") else f"# {line}" for line in examples.split("\n"))
    return settings + EXAMPLES_HEADER + commented + "\n"
