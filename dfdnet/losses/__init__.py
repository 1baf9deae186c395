"""losses of dfdnet."""
