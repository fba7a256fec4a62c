"""standards: see DESIGN.md."""
