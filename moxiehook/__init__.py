"""moxiehook: configure, fire, log and replay Moxie-style webhooks from the terminal."""

__version__ = "0.1.0"
