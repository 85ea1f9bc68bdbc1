# Developer entry points. `make test` is what CI runs (.ci/run).
.PHONY: test setup lint unit molecule sandbox sandbox-down bench bench-weights clean

test:
	bash tests/harness/run-tests.sh

setup:
	bash tests/harness/ensure-engine.sh
	bash tests/harness/ensure-venv.sh
	bash tests/harness/build-node-image.sh
	bash tests/harness/ensure-wheelhouse.sh ray ray==2.60.0
	bash tests/harness/ensure-wheelhouse.sh modelscope modelscope==1.40.2

lint: setup
	.venv/bin/ansible-lint

unit:
	bash tests/harness/ensure-venv.sh
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

clean:
	rm -rf .cache .venv
