"""artifacts: see DESIGN.md."""
