"""metadata: see DESIGN.md."""
