"""What every part uses: the errors, binary codes (packing, Hamming
distances), safe file writes, import hooks."""
