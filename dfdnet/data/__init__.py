"""data of dfdnet."""
