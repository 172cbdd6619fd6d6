"""Benchmarks: tools on top of the product (`aristobot bench ...`, see BENCHMARKS.md), never imported by it."""
