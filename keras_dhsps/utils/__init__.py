"""Helpers every part uses: the package's errors, safe file writes, import hooks."""
