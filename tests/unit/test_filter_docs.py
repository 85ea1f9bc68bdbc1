"""Every filter the collection exports is documented (plugins/filter/<name>.yml, written by
tools/filter_docs.py from its docstring), and ansible-doc renders each one."""

from __future__ import annotations

import importlib.util
import json
import subprocess

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("filter_docs", REPO_ROOT / "tools" / "filter_docs.py")
filter_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filter_docs)


def test_each_filter_has_its_documentation_up_to_date():
    stale = [path.name for path, text in filter_docs.expected_files().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == [], "run: python tools/filter_docs.py (stale or missing: %s)" % ", ".join(stale)
    exported = {path.stem for path in filter_docs.expected_files()}
    on_disk = {path.stem for path in filter_docs.FILTER_DIR.glob("*.yml")}
    assert on_disk == exported, "documentation of a filter no longer exported: %s" % sorted(on_disk - exported)


def test_ansible_doc_renders_every_filter():
    names = ["llmops.inference." + path.stem for path in filter_docs.expected_files()]
    ansible_doc = REPO_ROOT / ".venv" / "bin" / "ansible-doc"
    run = subprocess.run([str(ansible_doc) if ansible_doc.exists() else "ansible-doc", "-t", "filter", "--json", *names],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    docs = json.loads(run.stdout)
    assert sorted(docs) == sorted(names), run.stderr
    for name, entry in docs.items():
        assert entry["doc"]["short_description"] and "_input" in entry["doc"]["options"], name
