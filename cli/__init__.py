"""The `aristobot` command line: a tool on top of the product (cli/main.py holds the group), never imported by it."""
