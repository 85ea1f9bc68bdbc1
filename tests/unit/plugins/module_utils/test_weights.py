"""The weights layout on a real filesystem: check, stage, publish, re-sync, corruption."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _weights as weights

WANTED = {"source": "modelscope", "model": "acme/tiny", "revision": "v1"}


def listing_for(files):
    return [{"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for path, data in sorted(files.items())]


def fetch_into(staging, files, paths):
    """What the client does: write each named file into staging."""
    for path in paths:
        target = os.path.join(staging, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(files[path])


@pytest.fixture
def model():
    return {"config.json": b'{"a": 1}\n', "model.safetensors": os.urandom(200_000), "tok/vocab.json": b"{}"}


def place(weights_dir, model, wanted=None):
    wanted = wanted or WANTED
    listing = listing_for(model)
    plan = weights.stage(weights_dir, wanted["revision"], listing)
    fetch_into(plan["staging_dir"], model, plan["to_fetch"])
    return plan, weights.publish(weights_dir, wanted, listing)


def test_fresh_publish_is_complete_and_a_rerun_reads_no_file(tmp_path, model):
    weights_dir = str(tmp_path / "models" / "tiny")
    assert weights.check(weights_dir, WANTED)["complete"] is False
    plan, published = place(weights_dir, model)
    assert sorted(plan["to_fetch"]) == sorted(model) and plan["bytes_needed"] == sum(map(len, model.values()))
    assert published["hashed_bytes"] == plan["bytes_needed"]
    assert os.path.islink(weights_dir) and open(os.path.join(weights_dir, "model.safetensors"), "rb").read() == model["model.safetensors"]
    state = weights.check(weights_dir, WANTED)
    assert state["complete"] and state["hashed_bytes"] == 0 and state["changed_files"] == []
    assert not os.path.exists(weights.staging_dir(weights_dir, "v1"))


def test_an_edited_file_is_noticed_without_reading_it_and_only_it_is_fetched(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    place(weights_dir, model)
    with open(os.path.join(weights_dir, "model.safetensors"), "r+b") as handle:
        handle.write(b"XXXX")  # same size, new content: the mtime tells
    state = weights.check(weights_dir, WANTED)
    assert not state["complete"] and state["changed_files"] == ["model.safetensors"]
    plan, published = place(weights_dir, model)
    assert plan["to_fetch"] == ["model.safetensors"] and published["hashed_bytes"] == len(model["model.safetensors"])
    assert open(os.path.join(weights_dir, "model.safetensors"), "rb").read() == model["model.safetensors"]
    assert weights.check(weights_dir, WANTED)["complete"]


def test_a_new_revision_fetches_only_changed_files_and_keeps_the_previous_copy(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    _plan, first = place(weights_dir, model)
    changed = dict(model, **{"config.json": b'{"a": 2}\n'})
    v2 = dict(WANTED, revision="v2")
    plan, second = place(weights_dir, changed, v2)
    assert plan["to_fetch"] == ["config.json"] and second["hashed_bytes"] == len(changed["config.json"])
    assert weights.check(weights_dir, v2)["complete"] and not weights.check(weights_dir, WANTED)["complete"]
    assert os.path.isdir(first["published_dir"])  # a running server may still have it mounted
    place(weights_dir, model)  # a third publish removes the oldest copy
    assert not os.path.exists(first["published_dir"]) and os.path.isdir(second["published_dir"])


def test_a_corrupt_download_is_refused_and_removed_from_staging(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    listing = listing_for(model)
    plan = weights.stage(weights_dir, "v1", listing)
    fetch_into(plan["staging_dir"], dict(model, **{"config.json": b'{"a": 9}\n'}), plan["to_fetch"])
    with pytest.raises(weights.WeightsError, match="config.json has SHA-256"):
        weights.publish(weights_dir, WANTED, listing)
    assert not os.path.lexists(weights_dir)  # the serving path never saw it
    assert weights.plan_fetch(weights_dir, "v1", listing)["to_fetch"] == ["config.json"]


def test_partial_data_is_kept_and_counted(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    listing = listing_for(model)
    staging = weights.staging_dir(weights_dir, "v1")
    os.makedirs(staging)
    with open(os.path.join(staging, "model.safetensors.incomplete"), "wb") as handle:
        handle.write(model["model.safetensors"][:50_000])
    with open(os.path.join(staging, "stray.bin"), "wb") as handle:
        handle.write(b"not listed")
    plan = weights.stage(weights_dir, "v1", listing)
    assert plan["staged_bytes"] == 50_000 and plan["bytes_needed"] == sum(map(len, model.values())) - 50_000
    assert os.path.exists(os.path.join(staging, "model.safetensors.incomplete"))
    assert not os.path.exists(os.path.join(staging, "stray.bin"))


def test_a_folder_the_role_did_not_place_is_foreign_and_never_replaced(tmp_path, model):
    weights_dir = tmp_path / "tiny"
    weights_dir.mkdir()
    (weights_dir / "config.json").write_text("{}")
    assert weights.check(str(weights_dir), WANTED)["foreign"]
    with pytest.raises(weights.WeightsError, match="not placed by this role"):
        place(str(weights_dir), model)
    assert (weights_dir / "config.json").read_text() == "{}"


def test_full_verify_finds_corruption_that_keeps_size_and_mtime(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    place(weights_dir, model)
    target = os.path.join(weights_dir, "config.json")
    status = os.stat(target)
    with open(target, "r+b") as handle:
        handle.write(b"#")
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert weights.check(weights_dir, WANTED)["complete"]
    state = weights.check(weights_dir, WANTED, full_verify=True)
    assert state["changed_files"] == ["config.json"] and state["hashed_bytes"] == sum(map(len, model.values()))


def test_marker_records_what_was_verified(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    place(weights_dir, model)
    marker = json.load(open(os.path.join(weights_dir, weights.MARKER)))
    assert {key: marker[key] for key in WANTED} == WANTED
    assert [item["path"] for item in marker["files"]] == sorted(model)


@pytest.mark.parametrize(
    "document, message",
    [
        ({"Code": 10010205001, "Message": "model acme/nope not found", "Success": False}, "model acme/nope not found"),
        ({"Success": True, "Data": {"Files": [{"Path": "../etc/passwd", "Size": 1, "Sha256": "a" * 64}]}}, "unsafe"),
        ({"Success": True, "Data": {"Files": [{"Path": "w.bin", "Size": 1}]}}, "no SHA-256"),
        ({"Success": True, "Data": {"Files": []}}, "no files"),
    ],
)
def test_bad_listings_are_refused(document, message):
    with pytest.raises(weights.WeightsError, match=message):
        weights.parse_modelscope_listing(document)


def test_listing_skips_folders_and_sorts():
    document = {"Success": True, "Data": {"Files": [
        {"Path": "b.bin", "Type": "blob", "Size": 3, "Sha256": "B" * 64},
        {"Path": "sub", "Type": "tree"},
        {"Path": "a.json", "Type": "blob", "Size": 0, "Sha256": "a" * 64}]}}
    assert weights.parse_modelscope_listing(document) == [
        {"path": "a.json", "size": 0, "sha256": "a" * 64}, {"path": "b.bin", "size": 3, "sha256": "b" * 64}]


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_a_huggingface_listing_gives_lfs_files_by_sha256_and_small_files_by_git_blob_id():
    document = {"sha": "c" * 40, "siblings": [
        {"rfilename": "model.safetensors", "size": 5, "blobId": "a" * 40,
         "lfs": {"sha256": "B" * 64, "size": 5, "pointerSize": 134}},
        {"rfilename": "config.json", "size": 9, "blobId": "D" * 40},
    ]}
    assert weights.parse_huggingface_listing(document) == [
        {"path": "config.json", "size": 9, "git_sha1": "d" * 40},
        {"path": "model.safetensors", "size": 5, "sha256": "b" * 64},
    ]
    with pytest.raises(weights.WeightsError, match="no hash for config.json"):
        weights.parse_huggingface_listing({"siblings": [{"rfilename": "config.json", "size": 9}]})
    with pytest.raises(weights.WeightsError, match="unsafe file path"):
        weights.parse_huggingface_listing({"siblings": [{"rfilename": "../x", "size": 1, "blobId": "a" * 40}]})
    with pytest.raises(weights.WeightsError, match="Repository not found"):
        weights.parse_huggingface_listing({"error": "Repository not found"})


def test_files_known_by_git_blob_id_are_verified_by_it(tmp_path, model):
    weights_dir = str(tmp_path / "tiny")
    wanted = dict(WANTED, source="huggingface")
    listing = [dict(item) for item in listing_for(model)]
    for item in listing:
        if item["path"] != "model.safetensors":  # small files: git blob id only, as the hub lists them
            del item["sha256"]
            item["git_sha1"] = git_blob_id(model[item["path"]])
    plan = weights.stage(weights_dir, "v1", listing)
    fetch_into(plan["staging_dir"], dict(model, **{"config.json": b'{"a": 9}\n'}), plan["to_fetch"])
    with pytest.raises(weights.WeightsError, match="config.json has git blob id "):
        weights.publish(weights_dir, wanted, listing)
    plan = weights.stage(weights_dir, "v1", listing)
    assert plan["to_fetch"] == ["config.json"]  # the bad file was dropped; the rest stays staged
    fetch_into(plan["staging_dir"], model, plan["to_fetch"])
    weights.publish(weights_dir, wanted, listing)
    assert weights.check(weights_dir, wanted, listing, full_verify=True)["complete"]
    # A new revision that keeps the small files links them by their git blob id.
    plan = weights.stage(weights_dir, "v2", listing)
    assert plan["to_fetch"] == [] and plan["bytes_needed"] == 0
