"""facility: see DESIGN.md."""
