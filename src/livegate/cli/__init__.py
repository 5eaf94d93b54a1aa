"""The `livegate` command-line interface."""
