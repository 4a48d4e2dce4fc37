"""The one console every command prints to: stderr, so stdout stays for data."""

from rich.console import Console

console = Console(stderr=True)
