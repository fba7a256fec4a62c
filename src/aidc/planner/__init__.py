"""planner: see DESIGN.md."""
