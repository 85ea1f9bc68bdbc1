# Developer entry points. `make test` is what CI runs (.ci/run).
.PHONY: test setup lint unit molecule sandbox sandbox-down bench bench-weights bench-cluster bench-image clean

test:
	bash tests/harness/run-tests.sh

setup:
	bash tools/setup.sh

lint: setup
	.venv/bin/ansible-lint

unit:
	bash tools/ensure-venv.sh
	.venv/bin/python -m pytest -q tests/unit

molecule: setup
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/molecule test --all

sandbox:
	bash sandbox/up.sh

sandbox-down:
	bash sandbox/down.sh

bench:
	bash bench/serve.sh

bench-weights:
	bash bench/weights.sh

bench-cluster:
	bash bench/cluster.sh

bench-image:
	bash bench/image.sh

clean:
	rm -rf .cache .venv
