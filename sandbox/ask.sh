#!/usr/bin/env bash
# Ask the sandbox's endpoint one real question and print where it is and how to call it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=sandbox/common.sh
source "$root/sandbox/common.sh"

address=$(docker inspect --format "{{ (index .NetworkSettings.Networks \"$SANDBOX_NETWORK\").IPAddress }}" "$SANDBOX_HEAD")
key_file="$SANDBOX_ROOT/$SANDBOX_HEAD/secrets/vllm-api-key"
endpoint="http://$address:8000/v1"
response=$(curl -sS --fail-with-body "$endpoint/chat/completions" \
    -H "Authorization: Bearer $(cat "$key_file")" -H 'Content-Type: application/json' \
    -d "{\"model\": \"$SANDBOX_MODEL\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello, sandbox\"}], \"max_tokens\": 16, \"seed\": 1}")
answer=$(python3 -c 'import json, sys
reply = json.loads(sys.argv[1])
usage = reply["usage"]
print("  %s: %r" % (reply["choices"][0]["message"]["role"], reply["choices"][0]["message"]["content"]))
print("  (%d prompt + %d completion tokens, finish_reason %s)" % (
    usage["prompt_tokens"], usage["completion_tokens"], reply["choices"][0]["finish_reason"]))' "$response")
cat <<TEXT

Sandbox endpoint: $endpoint   (model '$SANDBOX_MODEL', the real vLLM engine on CPU)
API key:          kept in $key_file (mode 0600): export LLM_API_KEY=\$(cat $key_file)
Try it:           curl $endpoint/chat/completions -H "Authorization: Bearer \$LLM_API_KEY" \\
                    -H 'Content-Type: application/json' \\
                    -d '{"model": "$SANDBOX_MODEL", "messages": [{"role": "user", "content": "Hello"}]}'
Real answer from /v1/chat/completions (random weights, so random words):
$answer

Remove everything with: make sandbox-down
TEXT
