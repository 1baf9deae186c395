"""metrics of dfdnet."""
