"""A trained hasher in use: loading it, exporting it, encoding a collection."""
