"""serving: see DESIGN.md."""
