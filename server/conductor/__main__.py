"""Allows ``python -m conductor`` as a synonym of the ``conductor`` console script."""

from conductor.cli.main import main

main()
