"""The serving plan and every container spec (module_utils/_plans.py): the exact argv, env and
devices of the Ray head/worker and of the vLLM API server, headless rank and instances, for
the ray and mp backends. The GPU specs are proven here only (no GPU on this machine)."""

from __future__ import annotations

import pytest

from ansible_collections.llmops.inference.plugins.module_utils import _plans as plans


def nodes(vendor="cpu", count=0, n=1, vcpus=2):
    return [{"host": "head" if index == 0 else "w%d" % index, "vendor": vendor, "count": count, "vcpus": vcpus}
            for index in range(n)]


OPTIONS = {"profile": "auto", "tensor_parallel_size": 0, "pipeline_parallel_size": 0, "instances": 1, "nodes": 0,
           "distributed_backend": "auto"}


def plan(cluster, host="head", **options):
    """One node's view of the plan, as the serve role reads it: the plan with the node's part."""
    resolved = plans.resolve_plan(cluster, dict(OPTIONS, **options), "head")
    return dict(resolved, **resolved["nodes"][host])


@pytest.mark.parametrize("cluster, options, expected", [
    (nodes(), {}, ("cpu", "none", 1, 1, 1)),
    (nodes("nvidia", 8), {}, ("nvidia", "none", 8, 1, 1)),
    (nodes("nvidia", 8), {"instances": 4}, ("nvidia", "none", 2, 1, 1)),
    (nodes("vastai", 4), {"tensor_parallel_size": 2, "instances": 2}, ("vastai", "none", 2, 1, 1)),
    (nodes("nvidia", 8), {"profile": "cpu"}, ("cpu", "none", 1, 1, 1)),  # the CPU build runs anywhere
    # The seeds' two GPU servers: TP = GPUs per node, PP = nodes, through Ray.
    (nodes("nvidia", 8, n=2), {}, ("nvidia", "ray", 8, 2, 2)),
    (nodes("nvidia", 8, n=2), {"distributed_backend": "mp"}, ("nvidia", "mp", 8, 2, 2)),
    # CPU across nodes: vLLM's mp backend, one rank per node (tensor parallel across them).
    (nodes(n=2), {}, ("cpu", "mp", 2, 1, 2)),
    # Several instances, or vllm_serve_nodes: 1, serve from the head alone.
    (nodes("nvidia", 8, n=2), {"instances": 2, "nodes": 1}, ("nvidia", "none", 4, 1, 1)),
    (nodes("nvidia", 8, n=3), {"nodes": 2}, ("nvidia", "ray", 8, 2, 2)),
])
def test_automatic_values_follow_the_nodes(cluster, options, expected):
    result = plan(cluster, **options)
    assert result["problems"] == []
    assert (result["profile"], result["backend"], result["tensor_parallel"], result["pipeline_parallel"],
            result["nnodes"]) == expected


def test_the_cluster_plan_is_one_decision_for_every_node():
    cluster = [dict(node, address="10.0.0.%d" % (11 + index), erdma_nics=2)
               for index, node in enumerate(nodes("nvidia", 8, n=2))]
    images = {"image": "", "images": {"nvidia": "vllm/vllm-openai:v0.32.0"}, "registry_mirror": ""}
    result = plans.cluster_plan(cluster, OPTIONS, images)
    assert result["problems"] == []
    assert (result["backend"], result["tensor_parallel"], result["pipeline_parallel"], result["needs_ray"]) == (
        "ray", 8, 2, True)
    assert (result["head"], result["head_address"], result["image"]) == ("head", "10.0.0.11", "vllm/vllm-openai:v0.32.0")
    assert (result["image_derived"], result["ray_requirement"]) == (False, "")
    assert result["addresses"] == {"head": "10.0.0.11", "w1": "10.0.0.12"}
    assert result["nodes"]["w1"] == {"node_rank": 1, "role": "worker", "address": "10.0.0.12", "vendor": "nvidia",
                                     "count": 8, "erdma_nics": 2}


def test_upstreams_engine_image_on_two_gpu_nodes_gets_ray_at_the_clusters_pin():
    """vllm/vllm-openai carries no Ray since vLLM 0.18: the plan names the image derived from it."""
    cluster = [dict(node, address="10.0.0.%d" % (11 + index)) for index, node in enumerate(nodes("nvidia", 8, n=2))]
    images = {"images": {"nvidia": "vllm/vllm-openai:v0.32.0"}, "derive": True, "ray_requirement": "ray==2.60.0"}
    result = plans.cluster_plan(cluster, OPTIONS, images)
    assert (result["backend"], result["needs_ray"], result["engine_image"]) == ("ray", True, "vllm/vllm-openai:v0.32.0")
    assert result["image"].startswith("llmops/vllm-openai:v0.32.0-ray2.60.0-")
    assert (result["image_derived"], result["ray_requirement"]) == (True, "ray==2.60.0")
    # Your own image instead: it runs as it is.
    own = plans.cluster_plan(cluster, OPTIONS, dict(images, derive=False))
    assert (own["image"], own["image_derived"]) == ("vllm/vllm-openai:v0.32.0", False)


def test_the_erdma_user_space_goes_into_the_derived_image_only_where_nodes_have_erdma_nics():
    packages = ["/srv/erdma/libibverbs1_44.0-2_amd64.deb", "/srv/erdma/ibverbs-providers_44.0-2_amd64.deb"]
    images = {"images": {"nvidia": "vllm/vllm-openai:v0.32.0", "cpu": "llmops-vllm-cpu:0.32.0"}, "derive": True,
              "ray_requirement": "ray==2.60.0", "erdma_packages": packages}
    gpu = [dict(node, address="10.0.0.%d" % (11 + index)) for index, node in enumerate(nodes("nvidia", 8, n=2))]
    plain = plans.cluster_plan(gpu, OPTIONS, images)
    assert plain["erdma_packages"] == []  # no eRDMA NICs: nothing to add
    fabric = plans.cluster_plan([dict(node, erdma_nics=1) for node in gpu], OPTIONS, images)
    assert fabric["erdma_packages"] == packages
    # Named by what goes into it: the packages change the name, their folder does not.
    assert fabric["image"] != plain["image"] and fabric["image"].startswith("llmops/vllm-openai:v0.32.0-ray2.60.0-")
    moved = plans.cluster_plan([dict(node, erdma_nics=1) for node in gpu], OPTIONS,
                               dict(images, erdma_packages=[path.replace("/srv/erdma", "/opt/pkgs") for path in packages]))
    assert moved["image"] == fabric["image"]
    # Your own image, or the CPU profile: no packages.
    assert plans.cluster_plan([dict(node, erdma_nics=1) for node in gpu], OPTIONS, dict(images, derive=False))["erdma_packages"] == []
    assert plans.cluster_plan([dict(node, erdma_nics=1) for node in nodes(n=2)], OPTIONS, images)["erdma_packages"] == []


def test_a_run_that_leaves_out_a_serving_node_cannot_plan():
    result = plans.cluster_plan(nodes(n=2), OPTIONS, {}, left_out=["w1"])
    assert result["problems"] == [
        "On head: this run leaves out w1 (--limit), but the serving plan spans the nodes of inference_cluster and "
        "needs what each one has. Fix: run without --limit, or set vllm_serve_nodes: 1 to serve from the head alone."]
    assert plans.cluster_plan(nodes(n=2), dict(OPTIONS, nodes=1), {}, left_out=["w1"])["problems"] == []


@pytest.mark.parametrize("image, images, mirror, expected", [
    ("", {"cpu": "llmops-vllm-cpu:0.32.0"}, "", "llmops-vllm-cpu:0.32.0"),
    ("acme/vllm:1", {"cpu": "llmops-vllm-cpu:0.32.0"}, "", "acme/vllm:1"),
    # The mirror replaces a registry host (a first part with a dot), or prefixes a Docker Hub name.
    ("", {"nvidia": "vllm/vllm-openai:v0.32.0"}, "mirror.internal:5000", "mirror.internal:5000/vllm/vllm-openai:v0.32.0"),
    ("harbor.example.com/ai/vllm:1", {}, "mirror.internal", "mirror.internal/ai/vllm:1"),
])
def test_the_image_follows_the_profile_and_the_mirror(image, images, mirror, expected):
    profile = "nvidia" if "nvidia" in images else "cpu"
    assert plans.serving_image(profile, image, images, mirror) == expected


def test_each_node_knows_its_rank_and_role():
    cluster = nodes("nvidia", 8, n=3)
    assert [(plan(cluster, host)["node_rank"], plan(cluster, host)["role"]) for host in ("head", "w1", "w2")] == [
        (0, "head"), (1, "worker"), (2, "worker")]
    assert plan(cluster, "w2", nodes=2)["role"] == "idle"
    assert plan(cluster, "w2", nodes=2)["node_rank"] is None


@pytest.mark.parametrize("cluster, options, message", [
    (nodes(n=2), {"tensor_parallel_size": 4},
     "On head: vllm_serve_tensor_parallel_size=4 with the cpu profile on 2 nodes: one rank runs per node. Fix: leave "
     "it at 0 (automatic: 2)."),
    (nodes(), {"tensor_parallel_size": 2},
     "On head: vllm_serve_tensor_parallel_size=2 with the cpu profile: vLLM on CPU serves one rank per node here. "
     "Fix: leave vllm_serve_tensor_parallel_size at 0 (automatic) or 1; use vllm_serve_instances to use more cores, "
     "or more nodes."),
    (nodes(n=2), {"distributed_backend": "ray"},
     "On head: vllm_serve_distributed_backend=ray with the cpu profile: vLLM refuses its Ray executor on CPU (current "
     "platform cpu does not support ray). Fix: set it to auto or mp (vLLM's own multi-node backend)."),
    (nodes(n=2), {"pipeline_parallel_size": 2},
     "On head: vllm_serve_pipeline_parallel_size=2 with the cpu profile across nodes: vLLM's CPU path fails the "
     "first request (vllm#37933). Fix: leave it at 0 (automatic: 1); the nodes share the model by tensor parallel."),
    (nodes(), {"instances": 3},
     "On head: vllm_serve_instances=3 but the head has 2 CPU(s): each instance needs at least one. Fix: set "
     "vllm_serve_instances to at most 2."),
    (nodes(), {"profile": "nvidia"},
     "On head: vllm_serve_profile=nvidia but the head has 0 cpu accelerator(s). Fix: set vllm_serve_profile to "
     "auto or cpu."),
    (nodes("nvidia", 8), {"tensor_parallel_size": 4, "instances": 3},
     "On head: vllm_serve_tensor_parallel_size=4 x vllm_serve_instances=3 needs 12 nvidia accelerator(s) but the "
     "head has 8. Fix: make tensor parallel x instances at most 8 (0 = automatic)."),
    (nodes("nvidia", 8), {"instances": 9},
     "On head: vllm_serve_instances=9 needs at least one nvidia accelerator each but the head has 8. Fix: set "
     "vllm_serve_instances to at most 8."),
    (nodes("nvidia", 8), {"pipeline_parallel_size": 2},
     "On head: vllm_serve_pipeline_parallel_size=2 but 1 node(s) serve, one pipeline stage each. Fix: set it to at "
     "most 1 (0 = automatic)."),
    (nodes("nvidia", 8, n=2), {"tensor_parallel_size": 4},
     "On head: vllm_serve_tensor_parallel_size=4 x vllm_serve_pipeline_parallel_size=2 = 8, but the 2 serving "
     "node(s) have 16 nvidia accelerator(s). Fix: leave both at 0 (automatic: tensor = accelerators per node, "
     "pipeline = nodes) or make their product 16."),
    (nodes("nvidia", 8, n=2), {"instances": 2, "nodes": 2},
     "On head: vllm_serve_instances=2 with vllm_serve_nodes=2: several instances serve from the head alone. Fix: "
     "set vllm_serve_nodes: 1 to run instances on the head, or vllm_serve_instances: 1 to serve across nodes."),
    (nodes("nvidia", 8, n=2), {"nodes": 3},
     "On head: vllm_serve_nodes=3 but inference_cluster has 2 node(s). Fix: set it to at most 2 (0 = every node)."),
    (nodes("nvidia", 8, n=2) + [{"host": "w2", "vendor": "nvidia", "count": 4, "vcpus": 8}],
     {"distributed_backend": "mp", "tensor_parallel_size": 10, "pipeline_parallel_size": 2},
     "On head: vllm_serve_tensor_parallel_size=10 x pipeline 2 does not split evenly over 3 node(s) (the mp backend "
     "runs the same number of ranks on each). Fix: make tensor parallel x pipeline parallel a multiple of 3."),
    (nodes("nvidia", 8, n=2) + [{"host": "w2", "vendor": "cpu", "count": 0, "vcpus": 8}], {},
     "On head: inference_cluster=w2 has cpu accelerators while the head has nvidia. Fix: serve across nodes of one "
     "kind: take w2 out or set vllm_serve_nodes."),
])
def test_a_plan_that_cannot_work_is_refused_naming_host_variable_value_and_fix(cluster, options, message):
    assert message in plan(cluster, **options)["problems"]


NODE = {
    "name": "vllm-serve", "image": "vllm/vllm-openai:v0.32.0", "image_id": "sha256:abc", "model_source": "/data/m@v1",
    "listen": "10.0.0.11", "probe_address": "10.0.0.11", "port": 8000, "instance_base_port": 8100, "instances": 1,
    "vcpus": 4, "served_model_name": "qwen3", "max_model_len": 8192, "max_num_seqs": 64, "dtype": "auto",
    "accelerator_memory_mib": 0, "trust_remote_code": False,
    "gpu_memory_utilization": 0.9, "cpu_kv_cache_bytes": 1 << 30, "enable_chunked_prefill": True,
    "enforce_eager": False, "reasoning_parser": "", "tool_call_parser": "", "extra_args": [], "extra_env": {},
    "env_file": "/data/serve/vllm-serve.env", "api_key_sha256": "k" * 64, "network_mode": "host",
    "restart_policy": "unless-stopped", "shm_size": "16g", "host_ip": "10.0.0.11", "ifname": "eth1",
    "erdma_nics": 0, "master_addr": "10.0.0.11", "master_port": 29500,
    "ray": {"container": "ray-node", "temp_dir": "/data/ray", "token_file": "/data/secrets/ray-auth-token"},
}
COMMON_ARGS = ["/model", "--served-model-name", "qwen3", "--max-model-len", "8192", "--max-num-seqs", "64",
               "--dtype", "auto"]


def test_the_ray_backend_api_server_is_a_driver_on_the_heads_ray_node():
    the_plan = plan(nodes("nvidia", 8, n=2))
    [spec] = plans.vllm_specs(the_plan, dict(NODE, erdma_nics=2))
    assert spec["command"] == COMMON_ARGS + [
        "--tensor-parallel-size", "8", "--pipeline-parallel-size", "2", "--distributed-executor-backend", "ray",
        "--gpu-memory-utilization", "0.9", "--enable-chunked-prefill", "--host", "10.0.0.11", "--port", "8000"]
    assert spec["network_mode"] == spec["pid_mode"] == "container:ray-node"
    assert spec["env"] == {
        "VLLM_HOST_IP": "10.0.0.11", "NCCL_SOCKET_IFNAME": "eth1", "GLOO_SOCKET_IFNAME": "eth1",
        "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
        "NCCL_IB_DISABLE": "0", "NCCL_IB_GID_INDEX": "1", "NCCL_NET_GDR_LEVEL": "SYS", "NCCL_P2P_LEVEL": "SYS",
        "NCCL_IB_HCA": "erdma",
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/etc/llmops/ray-auth-token", "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ADDRESS": "auto", "VLLM_RPC_BASE_PATH": "/tmp/ray"}
    assert spec["volumes"] == ["/data/m@v1:/model:ro", "/data/ray:/tmp/ray",
                               "/data/secrets/ray-auth-token:/etc/llmops/ray-auth-token:ro"]
    assert spec["device_requests"] == [{"driver": "nvidia", "capabilities": [["gpu"]], "count": -1}]
    assert spec["devices"] == ["/dev/infiniband:/dev/infiniband"]
    assert (spec["ipc_mode"], spec["shm_size"], spec["privileged"]) == ("host", "", False)
    assert spec["ulimits"] == ["memlock:-1:-1", "stack:67108864:67108864"]
    assert spec["probe_url"] == "http://10.0.0.11:8000"
    # Its workers are the Ray nodes: nothing else runs on them.
    assert plans.vllm_specs(plan(nodes("nvidia", 8, n=2), "w1"), NODE) == []


SHIM = "/repo/sandbox/ray_on_cpu"


def test_the_sandbox_shim_lets_the_cpu_profile_serve_through_ray():
    """SANDBOX ONLY (vllm_serve_cpu_ray_shim): without it the cpu profile refuses the ray backend."""
    refused = plan(nodes(n=2), distributed_backend="ray")
    assert refused["problems"] and refused["cpu_ray_shim"] == ""
    the_plan = plan(nodes(n=2), distributed_backend="ray", cpu_ray_shim=SHIM)
    assert (the_plan["problems"], the_plan["backend"], the_plan["cpu_ray_shim"]) == ([], "ray", SHIM)
    assert plan(nodes(n=2), cpu_ray_shim=SHIM)["cpu_ray_shim"] == ""  # mp: the shim is not used
    [spec] = plans.vllm_specs(the_plan, dict(NODE, shm_size="1g"))
    assert spec["command"][spec["command"].index("--distributed-executor-backend") + 1] == "ray"
    assert spec["volumes"][-1] == SHIM + ":/opt/llmops-sandbox-ray-on-cpu:ro"
    assert spec["env"]["PYTHONPATH"] == "/opt/llmops-sandbox-ray-on-cpu"
    # The engine's shared memory with the worker of its own node: the Ray node's IPC namespace.
    assert (spec["ipc_mode"], spec["shm_size"]) == ("container:ray-node", "")
    ray = plans.ray_node_spec(dict(RAY_NODE, profile="cpu", count=0, erdma_nics=0, shm_size="512m", cpu_ray_shim=SHIM))
    assert ray["command"][-1] == '--resources={"llmops_cpu_rank": 1}'
    assert SHIM + ":/opt/llmops-sandbox-ray-on-cpu:ro" in ray["volumes"]
    assert (ray["env"]["PYTHONPATH"], ray["ipc_mode"], ray["shm_size"]) == ("/opt/llmops-sandbox-ray-on-cpu", "shareable", "512m")
    assert "PYTHONPATH" not in plans.ray_node_spec(dict(RAY_NODE, profile="cpu", count=0, erdma_nics=0))["env"]


def test_the_mp_backend_runs_the_api_on_the_head_and_a_headless_rank_on_each_worker():
    cluster = nodes(n=2)
    [head] = plans.vllm_specs(plan(cluster, "head"), dict(NODE, shm_size="1g"))
    [worker] = plans.vllm_specs(plan(cluster, "w1"), dict(NODE, host_ip="10.0.0.12", shm_size="1g"))
    multi_node = ["--tensor-parallel-size", "2", "--pipeline-parallel-size", "1", "--distributed-executor-backend",
                  "mp", "--nnodes", "2"]
    cpu = ["--kv-cache-memory-bytes", str(1 << 30), "--enable-chunked-prefill", "--enforce-eager"]
    assert head["command"] == COMMON_ARGS + multi_node + [
        "--node-rank", "0", "--master-addr", "10.0.0.11", "--master-port", "29500"] + cpu + [
        "--host", "10.0.0.11", "--port", "8000"]
    assert worker["command"] == COMMON_ARGS + multi_node + [
        "--node-rank", "1", "--master-addr", "10.0.0.11", "--master-port", "29500"] + cpu + ["--headless"]
    assert (worker["role"], worker["port"], worker["probe_url"], worker["env_file"], worker["api_key_sha256"]) == (
        "headless", None, "", "", "")
    assert worker["env"]["VLLM_HOST_IP"] == "10.0.0.12"
    assert head["env"]["TORCHDYNAMO_DISABLE"] == worker["env"]["TORCHDYNAMO_DISABLE"] == "1"
    assert (head["network_mode"], head["pid_mode"], head["ipc_mode"], head["shm_size"]) == ("host", "", "", "1g")
    assert head["device_requests"] == head["devices"] == head["ulimits"] == []


def test_instances_split_the_accelerators_or_the_cores():
    gpu = plans.vllm_specs(plan(nodes("nvidia", 8), instances=2), dict(NODE, instances=2))
    assert [spec["name"] for spec in gpu] == ["vllm-serve-0", "vllm-serve-1"]
    assert [spec["device_requests"][0]["device_ids"] for spec in gpu] == [["0", "1", "2", "3"], ["4", "5", "6", "7"]]
    assert [spec["command"][-4:] for spec in gpu] == [["--host", "127.0.0.1", "--port", "8100"],
                                                      ["--host", "127.0.0.1", "--port", "8101"]]
    assert [spec["probe_url"] for spec in gpu] == ["http://127.0.0.1:8100", "http://127.0.0.1:8101"]
    cpu = plans.vllm_specs(plan(nodes(vcpus=4), instances=2), dict(NODE, instances=2))
    assert [spec["env"]["VLLM_CPU_OMP_THREADS_BIND"] for spec in cpu] == ["0-1", "2-3"]
    vastai = plans.vllm_specs(plan(nodes("vastai", 4), instances=2), dict(NODE, instances=2))
    assert [spec["env"]["VACC_VISIBLE_DEVICES"] for spec in vastai] == ["0,1", "2,3"]
    assert all(spec["privileged"] and spec["device_requests"] == [] for spec in vastai)


def test_vastai_passes_the_vendors_flags_and_only_those():
    [spec] = plans.vllm_specs(plan(nodes("vastai", 4)), dict(NODE, max_num_seqs=0))
    assert spec["command"] == ["/model", "--served-model-name", "qwen3", "--max-model-len", "8192", "--max-num-seqs", "4",
                               "--tensor-parallel-size", "4", "--trust-remote-code", "--enforce-eager",
                               "--host", "10.0.0.11", "--port", "8000"]
    # What the operator sets still goes in.
    [spec] = plans.vllm_specs(plan(nodes("vastai", 4)), dict(NODE, max_num_seqs=8, dtype="float16"))
    assert spec["command"][5:9] == ["--max-num-seqs", "8", "--dtype", "float16"]


def test_max_num_seqs_zero_is_the_profiles_default():
    assert plans.max_num_seqs("vastai", 0) == (4, 4)
    assert plans.max_num_seqs("cpu", 0) == (256, 256)
    # NVIDIA: vLLM's own default (no flag); the balancer follows it by the GPUs' memory.
    assert plans.max_num_seqs("nvidia", 0, 97871) == (None, 1024)  # H20 96 GB
    assert plans.max_num_seqs("nvidia", 0, 46068) == (None, 256)  # L40S
    assert plans.max_num_seqs("nvidia", 64, 97871) == (64, 64)
    [spec] = plans.vllm_specs(plan(nodes("nvidia", 8)), dict(NODE, max_num_seqs=0, accelerator_memory_mib=97871))
    assert "--max-num-seqs" not in spec["command"] and "--trust-remote-code" not in spec["command"]
    [spec] = plans.vllm_specs(plan(nodes("nvidia", 8)), dict(NODE, trust_remote_code=True))
    assert "--trust-remote-code" in spec["command"]


def test_extra_args_and_env_come_last():
    [spec] = plans.vllm_specs(plan(nodes()), dict(NODE, extra_args=["--seed", "1"], extra_env={"DO_NOT_TRACK": "0"}))
    assert spec["command"][-2:] == ["--seed", "1"]
    assert spec["env"]["DO_NOT_TRACK"] == "0"


RAY_NODE = {
    "name": "ray-node", "head": True, "image": "vllm/vllm-openai:v0.32.0", "image_id": "sha256:abc",
    "host_ip": "10.0.0.11", "head_ip": "10.0.0.11", "ports": [6379, 6579], "ifname": "eth1", "profile": "nvidia",
    "count": 8, "erdma_nics": 2, "network_mode": "host", "restart_policy": "unless-stopped", "shm_size": "16g",
    "object_store_bytes": 4294967296, "temp_dir": "/data/ray", "token_file": "/data/secrets/ray-auth-token",
    "token_sha256": "t" * 64, "model_source": "/data/m@v1", "dashboard": True, "extra_env": {}, "extra_args": [],
}
WORKER_PORTS = ["--node-manager-port=6380", "--object-manager-port=6381", "--runtime-env-agent-port=6382",
                "--dashboard-agent-grpc-port=6383", "--dashboard-agent-listen-port=6384", "--metrics-export-port=6385",
                "--min-worker-port=6399", "--max-worker-port=6579"]


def test_the_ray_head_binds_its_address_pins_every_port_and_keeps_the_dashboard_local():
    spec = plans.ray_node_spec(RAY_NODE)
    assert spec["entrypoint"] == ["ray"]
    assert spec["command"] == [
        "start", "--block", "--node-ip-address=10.0.0.11", "--head", "--port=6379", "--ray-client-server-port=6387",
        "--dashboard-host=127.0.0.1", "--dashboard-port=6386"] + WORKER_PORTS + [
        "--object-store-memory=4294967296", "--disable-usage-stats", "--num-gpus=8"]
    assert spec["env"]["RAY_AUTH_MODE"] == "token"
    assert spec["env"]["RAY_AUTH_TOKEN_PATH"] == "/etc/llmops/ray-auth-token"
    assert spec["env"]["NCCL_IB_HCA"] == "erdma"
    assert (spec["env"]["VLLM_HOST_IP"], spec["env"]["NCCL_SOCKET_IFNAME"], spec["env"]["GLOO_SOCKET_IFNAME"]) == (
        "10.0.0.11", "eth1", "eth1")
    assert "RAY_AUTH_TOKEN" not in spec["env"]  # the token travels as a mounted file, never in the environment
    assert spec["volumes"] == ["/data/ray:/tmp/ray", "/data/secrets/ray-auth-token:/etc/llmops/ray-auth-token:ro",
                               "/data/m@v1:/model:ro"]
    assert spec["devices"] == ["/dev/infiniband:/dev/infiniband"]
    assert spec["device_requests"] == [{"driver": "nvidia", "capabilities": [["gpu"]], "count": -1}]
    assert spec["ulimits"] == ["memlock:-1:-1", "stack:67108864:67108864"]
    assert spec["token_sha256"] == "t" * 64


def test_a_ray_worker_joins_the_heads_private_address():
    spec = plans.ray_node_spec(dict(RAY_NODE, head=False, host_ip="10.0.0.12", profile="vastai", count=4,
                                    dashboard=False, model_source=""))
    assert spec["command"] == ["start", "--block", "--node-ip-address=10.0.0.12", "--address=10.0.0.11:6379"] + \
        WORKER_PORTS + ["--object-store-memory=4294967296", "--disable-usage-stats"]
    assert spec["env"]["VACC_VISIBLE_DEVICES"] == "0,1,2,3"
    assert spec["privileged"] is True
    assert "NCCL_IB_HCA" not in spec["env"]
    assert spec["volumes"] == ["/data/ray:/tmp/ray", "/data/secrets/ray-auth-token:/etc/llmops/ray-auth-token:ro"]


def test_the_dashboard_can_be_off_and_cpu_nodes_get_shm_not_host_ipc():
    spec = plans.ray_node_spec(dict(RAY_NODE, profile="cpu", count=0, erdma_nics=0, dashboard=False, shm_size="512m"))
    assert "--include-dashboard=false" in spec["command"]
    assert not any(arg.startswith("--dashboard-host") or arg.startswith("--num-gpus") for arg in spec["command"])
    assert (spec["ipc_mode"], spec["shm_size"], spec["devices"], spec["device_requests"]) == ("", "512m", [], [])


def test_every_ray_port_comes_from_the_one_range():
    ports = plans.ray_ports(20000, 20100)
    assert ports["port"] == 20000
    assert sorted(ports.values())[0] == 20000 and max(ports.values()) == 20100
    assert len(set(ports.values())) == len(ports)
    assert plans.ray_ports_problem("head", [6379, 6579]) == ""
    assert plans.ray_ports_problem("head", [6379, 6390]) == (
        "On head: ray_cluster_ports=[6379, 6390] is not a range of at least 36 ports between 1024 and 65535. Fix: "
        "give [first, last] with last - first + 1 >= 36, e.g. [6379, 6579]; open it between the nodes only.")
    assert plans.ray_ports_problem("head", [80, 400])
    assert plans.ray_ports_problem("head", [6379, 6400, 6579])  # a range is two ports


def test_serving_ports_inside_the_ray_range_are_named():
    assert plans.ray_port_clashes("head", [6379, 6579], {"vllm_serve_port": 8000, "vllm_serve_master_port": 29500}) == ""
    assert plans.ray_port_clashes("head", [6379, 6579], {"vllm_serve_port": "6400", "vllm_serve_master_port": 29500}) == (
        "On head: vllm_serve_port=6400 is inside ray_cluster_ports [6379, 6579]. Fix: move one of them; vLLM and Ray "
        "cannot share a port.")
