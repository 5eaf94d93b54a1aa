"""`python -m livegate`: the same as the `livegate` command."""

from livegate.cli.main import app

app(prog_name="livegate")
