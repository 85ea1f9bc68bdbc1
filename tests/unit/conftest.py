"""Make `ansible_collections.llmops.inference` importable from the checkout."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# collections/ansible_collections/llmops/inference links back to the repository root.
sys.path.insert(0, str(REPO_ROOT / "collections"))
