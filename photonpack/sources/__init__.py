"""Sources built into wheels: hermetic builds of locked sdists (issue 15)."""
