"""registry: see DESIGN.md."""
