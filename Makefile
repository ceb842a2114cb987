.PHONY: setup run test lint bench

setup:
	scripts/setup

run:
	scripts/run

test:
	scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	.venv/bin/python scripts/bench_classify.py
