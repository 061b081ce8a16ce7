"""`python -m unionctl`: the same as the `unionctl` command."""

from unionctl.cli import app

app()
