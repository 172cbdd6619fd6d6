"""`python -m cli ...` is `aristobot ...`."""

from cli.main import main

main()
