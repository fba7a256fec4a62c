"""pipeline: see DESIGN.md."""
