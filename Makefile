.PHONY: demo test lint bench docs

demo:  ## README command 1: install and run the digits demo
	python -m pip install -e . && python -m noisyclf

test:  ## README command 2 (what .ci/run calls)
	python -m pip install -e ".[test]" && python -m pytest

bench:  ## benchmark scripts; CSV and plots go to benchmarks/results/
	python benchmarks/bench_digits.py
	python benchmarks/bench_memory_cache.py
	python benchmarks/bench_tabular.py
	python benchmarks/bench_lr_sensitivity.py

lint:  ## what tests/test_lint.py checks
	python -m ruff check .

docs:  ## warnings are errors
	python -m pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html
