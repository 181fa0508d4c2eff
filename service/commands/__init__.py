"""CLI command groups, registered by service/cli.py."""
