"""models of dfdnet."""
