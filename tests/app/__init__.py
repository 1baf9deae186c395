"""Tests of the web app (dfdnet.app); a package, so that its conftest.py does not shadow tests/conftest.py."""
