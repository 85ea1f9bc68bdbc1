#!/usr/bin/env bash
# The user's command, exactly as written in the README, must parse and list the example
# head and worker on a fresh clone (no install step, no reachable hosts).
set -euo pipefail
cd "$(dirname "$0")/../.."

ansible-playbook deploy.yml -i prod --syntax-check
hosts=$(ansible-playbook deploy.yml -i prod --list-hosts)
printf '%s\n' "$hosts"
for expected in gpu-node-1 gpu-node-2; do
    grep -qw "$expected" <<<"$hosts" || { echo "ERROR: $expected missing from --list-hosts" >&2; exit 1; }
done
# Every phase has its own tag, so `--tags serve` reruns serving alone.
tags=$(ansible-playbook deploy.yml -i prod --list-tags)
for tag in preflight host drivers weights cluster serve verify benchmark; do
    grep -q "TAGS: \[.*\b$tag\b" <<<"$tags" || { echo "ERROR: no play tagged $tag" >&2; exit 1; }
done
# The benchmark runs only when asked for (--tags benchmark): a plain deploy lists none of its steps.
plain=$(ansible-playbook deploy.yml -i prod --list-tasks)
if grep -q "Read the endpoint's API container\|vllm_benchmark : Run" <<<"$plain"; then
    echo "ERROR: a plain deploy.yml would run the benchmark" >&2
    exit 1
fi
grep -q "Read the endpoint's API container" <<<"$(ansible-playbook deploy.yml -i prod --list-tasks --tags benchmark)" \
    || { echo "ERROR: --tags benchmark does not reach the benchmark" >&2; exit 1; }
