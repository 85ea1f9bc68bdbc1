# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of an OpenAI-compatible endpoint (vLLM): pure decisions over HTTP answers.

/health alone lies: it turns 200 before the model is usable and stays 200 after a Ray
worker is gone. Ready means /health is 200 AND /v1/models lists the served model AND a
one-token completion succeeds with the API key.
"""

from __future__ import annotations

import json

CONDITION_HEALTH = "health"
CONDITION_MODEL_LISTED = "model_listed"
CONDITION_COMPLETION = "completion"
# The server runs and refuses the key: it holds another one. Not a slow start: no wait ends it.
CONDITION_API_KEY = "api_key"


def parse_models(body):
    """Model ids and max_model_len per id from a /v1/models body; ValueError when malformed."""
    document = json.loads(body)
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("/v1/models answered without a 'data' list")
    models = {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("id"):
            models[entry["id"]] = entry.get("max_model_len")
    return models


def completion_request(model):
    """The smallest request that proves the engine generates: one token, no sampling noise."""
    return {"model": model, "prompt": "ping", "max_tokens": 1, "temperature": 0}


def completion_succeeded(body):
    """A completion body proves generation when it carries at least one choice."""
    document = json.loads(body)
    choices = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(choices, list) or not choices:
        raise ValueError("completion answered without choices: %s" % body[:200])
    return True


def join_url(base_url, path):
    return base_url.rstrip("/") + path


class Poll:
    """The outcome of one poll: the first unmet condition, or ready."""

    def __init__(self, failed_condition=None, error="", models=None):
        self.failed_condition = failed_condition
        self.error = error
        self.models = models or {}

    @property
    def ready(self):
        return self.failed_condition is None


def evaluate(http_get, http_post, base_url, model, check_completion):
    """Run one poll. http_get(url) / http_post(url, payload) return (status, body) or raise.

    Conditions are checked in order, so a failure names the first one that was not met.
    """
    try:
        status, body = http_get(join_url(base_url, "/health"))
    except Exception as error:  # noqa: BLE001 - any transport error means "not ready yet"
        return Poll(CONDITION_HEALTH, "GET /health: %s" % error)
    if status != 200:
        return Poll(CONDITION_HEALTH, "GET /health answered %s: %s" % (status, body[:200]))

    try:
        status, body = http_get(join_url(base_url, "/v1/models"))
        if status == 401:
            return Poll(CONDITION_API_KEY, "GET /v1/models answered 401 (%s): the server refuses the deployment's API "
                        "key, so it holds another one" % body[:100].strip())
        if status != 200:
            return Poll(CONDITION_MODEL_LISTED, "GET /v1/models answered %s: %s" % (status, body[:200]))
        models = parse_models(body)
    except Exception as error:  # noqa: BLE001
        return Poll(CONDITION_MODEL_LISTED, "GET /v1/models: %s" % error)
    if model not in models:
        return Poll(
            CONDITION_MODEL_LISTED,
            "model '%s' not served; /v1/models lists %s" % (model, sorted(models) or "nothing"),
            models,
        )

    if check_completion:
        try:
            status, body = http_post(join_url(base_url, "/v1/completions"), completion_request(model))
            if status != 200:
                return Poll(CONDITION_COMPLETION, "POST /v1/completions answered %s: %s" % (status, body[:200]), models)
            completion_succeeded(body)
        except Exception as error:  # noqa: BLE001
            return Poll(CONDITION_COMPLETION, "POST /v1/completions: %s" % error, models)
    return Poll(models=models)
