"""The `aidc` command line: thin Typer commands that parse, call the library core, and render."""
