"""evaluation: see DESIGN.md."""
