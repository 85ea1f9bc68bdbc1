#!/usr/bin/env bash
# The control node on the oldest and the newest ansible-core the README claims: 2.17 on
# Debian 12's Python 3.11, and 2.21 (what `pip install ansible` gives today) on Debian 13's
# Python 3.13. Each runs in a container of the node image of that Debian release, from wheels
# fetched here (the containers reach no registry), with the collections the venv carries:
#   ansible-doc of every module and filter (their documentation parses),
#   --syntax-check of every entry playbook,
#   the preflight header for real, on the container itself as a one-node cluster
#   (tests/compat/hosts.yml): every role's inputs, the node read, the plan decided.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh

controllers=("bookworm 3.11 2.17.14" "trixie 3.13 2.21.5")
bundled=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections
modules=$(ls plugins/modules/*.py | xargs -n1 basename | sed 's/\.py$//; s/^/llmops.inference./' | xargs)
filters=$(ls plugins/filter/*.yml | xargs -n1 basename | sed 's/\.yml$//; s/^/llmops.inference./' | xargs)
playbooks=$(ls deploy.yml playbooks/*.yml | xargs)

status=0
for controller in "${controllers[@]}"; do
    read -r suite python core <<<"$controller"
    wheels="$root/.cache/wheelhouse/controller-py$python-$core"
    if [[ ! -f "$wheels/.complete" ]]; then
        log "fetching ansible-core $core and its dependencies for Python $python"
        mkdir -p "$wheels"
        .venv/bin/pip download -q --disable-pip-version-check --only-binary=:all: --python-version "$python" \
            --platform manylinux2014_x86_64 \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 -d "$wheels" "ansible-core==$core" \
            2> >(grep -v "is ignored: it is neither" >&2)
        touch "$wheels/.complete"
    fi
    image=$(tools/build-node-image.sh --print-name "$suite")
    tools/build-node-image.sh "$suite" >/dev/null
    log "ansible-core $core on Python $python (Debian $suite)"
    # What an interrupted run of this check left.
    docker rm -f "llmops-controller-$suite" >/dev/null 2>&1 || true
    docker run --rm --name "llmops-controller-$suite" \
        -v "$root:/src:ro" -v "$wheels:/wheels:ro" -v "$bundled:/opt/bundled/ansible_collections:ro" \
        -e ANSIBLE_COLLECTIONS_PATH=/src/collections:/opt/bundled -e ANSIBLE_FORCE_COLOR=0 \
        -e ANSIBLE_LOCAL_TEMP=/tmp/ansible-local -e ANSIBLE_REMOTE_TEMP=/tmp/ansible-remote \
        -e MODULES="$modules" -e FILTERS="$filters" -e PLAYBOOKS="$playbooks" -e CORE="$core" \
        --entrypoint bash "$image" -euo pipefail -c '
            python3 -m venv /venv
            /venv/bin/pip install -q --no-index --find-links /wheels "ansible-core==$CORE"
            export PATH=/venv/bin:$PATH
            python3 --version; ansible --version | head -1
            cd /src
            # Every plugin documentation parses (ansible-doc fails on one that does not).
            ansible-doc --json -t module $MODULES >/dev/null
            ansible-doc --json -t filter $FILTERS >/dev/null
            echo "documentation: $(echo $MODULES | wc -w) modules, $(echo $FILTERS | wc -w) filters"
            for playbook in $PLAYBOOKS; do
                ansible-playbook --syntax-check -i tests/compat/hosts.yml "$playbook" >/dev/null
            done
            echo "syntax: $(echo $PLAYBOOKS | wc -w) playbooks"
            # SIMULATION: a CPU-only PCI tree, and a plain kernel command line.
            python3 tests/fixtures/simulated_pci.py /var/lib/llmops-simulation/sys cpu-only
            mkdir -p /var/lib/llmops-simulation/proc /var/lib/llmops-simulation/dev
            echo "BOOT_IMAGE=/boot/vmlinuz root=/dev/vda1 ro" >/var/lib/llmops-simulation/proc/cmdline
            ansible-playbook -i tests/compat/hosts.yml playbooks/preflight.yml >/tmp/header.log 2>&1 \
                || { tail -40 /tmp/header.log; exit 1; }
            grep -q "Cluster plan: cpu profile, 1 serving node(s) (compat-node)" /tmp/header.log \
                || { tail -40 /tmp/header.log; exit 1; }
            grep -E "Cluster plan:|compat-node +:" /tmp/header.log
            # None: a deprecated use today is an error in a later ansible-core.
            deprecations=$(grep -c "DEPRECATION" /tmp/header.log || true)
            echo "deprecation warnings: $deprecations"
            [[ $deprecations == 0 ]] || { grep -A8 "DEPRECATION" /tmp/header.log; exit 1; }
            # A bad value stops in the header, naming host, variable, value and fix.
            if ansible-playbook -i tests/compat/hosts.yml playbooks/preflight.yml -e llmops_reboot_policy=sometimes \
                >/tmp/refused.log 2>&1; then
                echo "llmops_reboot_policy=sometimes was not refused"; exit 1
            fi
            tr -s " \n" "  " </tmp/refused.log | grep -q "On compat-node: llmops_reboot_policy=\"sometimes\" is wrong.* Fix:" \
                || { tail -30 /tmp/refused.log; exit 1; }
            echo "refused: llmops_reboot_policy=sometimes"
        ' || status=1
done
exit $status
