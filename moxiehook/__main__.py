"""``python -m moxiehook``: the same entry point as the ``moxiehook`` console script."""

from moxiehook.cli import main

if __name__ == "__main__":
    main()
