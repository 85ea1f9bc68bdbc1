# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each node runs: the serving plan of the cluster, and the spec of every container the
cluster and serve phases start (Ray node, vLLM API server, headless vLLM rank, instance).

Pure functions over plain values, so the tasks stay thin and every rule is unit-tested. A
spec holds everything that shapes its container; its hash (plugins/filter/serving.py) is the
label a rerun compares.
"""

from __future__ import annotations

import os

from ansible_collections.llmops.inference.plugins.module_utils._images import derived_image_name

# Alibaba eRDMA: the NCCL settings of Alibaba Cloud's guide, only where eRDMA NICs exist. The
# guide's levels are integers (5); NCCL maps 4 and 5 both to SYS (paths.cc, levelsOldToNew)
# and documents the names, so the names are written.
ERDMA_NCCL_ENV = {
    "NCCL_IB_DISABLE": "0",
    "NCCL_IB_GID_INDEX": "1",
    "NCCL_NET_GDR_LEVEL": "SYS",
    "NCCL_P2P_LEVEL": "SYS",
    "NCCL_IB_HCA": "erdma",
}
# Where the containers see the Ray token and Ray's session folder.
RAY_TOKEN_PATH = "/etc/llmops/ray-auth-token"
RAY_TEMP_DIR = "/tmp/ray"
# Ray's fixed ports, in this order from the first port of ray_cluster_ports; the worker ports
# take the rest of the range from RAY_WORKER_PORTS_OFFSET on.
RAY_FIXED_PORTS = (
    "port", "node-manager-port", "object-manager-port", "runtime-env-agent-port",
    "dashboard-agent-grpc-port", "dashboard-agent-listen-port", "metrics-export-port",
    "dashboard-port", "ray-client-server-port",
)
RAY_WORKER_PORTS_OFFSET = 20
# SANDBOX ONLY (vllm_serve_cpu_ray_shim): where the shim that lets vLLM's Ray executor run on
# CPU (sandbox/ray_on_cpu) is mounted, and the Ray resource each node then offers once.
CPU_RAY_SHIM_MOUNT = "/opt/llmops-sandbox-ray-on-cpu"
CPU_RAY_RESOURCE = "llmops_cpu_rank"
RAY_MIN_WORKER_PORTS = 16


def _problem(host, variable, value, why, fix):
    return "On %s: %s=%s %s. Fix: %s" % (host, variable, value, why, fix)


def resolve_plan(cluster, options, host):
    """The serving plan of the cluster: profile, backend, parallelism and every node's part.

    cluster: the nodes of inference_cluster in rank order, head first, each a dict with host,
    vendor, count (accelerators) and vcpus. options: profile, tensor_parallel_size,
    pipeline_parallel_size, instances, nodes, distributed_backend (the vllm_serve_* values;
    0 and auto = automatic). host: the host the problems are reported on (the head).

    Returns profile, backend (none, mp or ray), tensor_parallel, pipeline_parallel, nnodes,
    master_host, nodes ({host: {node_rank (None when the node serves nothing), role (head,
    worker or idle)}}), and problems: one message per wrong input naming the host, variable,
    value and fix.
    """
    head = cluster[0]
    vendor, count = head.get("vendor", "cpu"), int(head.get("count", 0))
    instances = int(options["instances"])
    wanted_profile = options["profile"]
    profile = vendor if wanted_profile == "auto" else wanted_profile
    wanted_nodes = int(options.get("nodes", 0))
    nnodes = wanted_nodes or (len(cluster) if instances == 1 else 1)
    wanted_tensor = int(options["tensor_parallel_size"])
    wanted_pipeline = int(options["pipeline_parallel_size"])
    on_cpu = profile == "cpu"
    if on_cpu:
        # One rank per node: vLLM's CPU build serves tensor parallel across nodes; pipeline
        # parallel across nodes fails upstream on CPU (vllm#37933).
        tensor = wanted_tensor or nnodes
        pipeline = wanted_pipeline or 1
    else:
        tensor = wanted_tensor or max(count // max(instances, 1), 1)
        pipeline = wanted_pipeline or nnodes
    wanted_backend = options.get("distributed_backend", "auto")
    if nnodes <= 1:
        backend = "none"
    elif wanted_backend == "auto":
        backend = "mp" if on_cpu else "ray"
    else:
        backend = wanted_backend

    problems = []
    if profile != "cpu" and profile != vendor:
        problems.append(_problem(
            host, "vllm_serve_profile", wanted_profile,
            "but the head has %d %s accelerator(s)" % (count, vendor), "set vllm_serve_profile to auto or %s." % vendor))
    if nnodes > len(cluster):
        problems.append(_problem(
            host, "vllm_serve_nodes", wanted_nodes, "but inference_cluster has %d node(s)" % len(cluster),
            "set it to at most %d (0 = every node)." % len(cluster)))
    if instances > 1 and nnodes > 1:
        problems.append(_problem(
            host, "vllm_serve_instances", instances,
            "with vllm_serve_nodes=%d: several instances serve from the head alone" % nnodes,
            "set vllm_serve_nodes: 1 to run instances on the head, or vllm_serve_instances: 1 to serve across nodes."))
    if pipeline > max(nnodes, 1):
        problems.append(_problem(
            host, "vllm_serve_pipeline_parallel_size", pipeline,
            "but %d node(s) serve, one pipeline stage each" % nnodes,
            "set it to at most %d (0 = automatic)." % nnodes))
    if on_cpu:
        problems.extend(_cpu_problems(host, head, tensor, pipeline, nnodes, instances))
    elif not problems:
        problems.extend(_accelerator_problems(host, cluster[:nnodes], vendor, tensor, pipeline, nnodes, instances,
                                              bool(wanted_tensor)))
    if backend == "ray" and on_cpu and not options.get("cpu_ray_shim"):
        problems.append(_problem(
            host, "vllm_serve_distributed_backend", wanted_backend,
            "with the cpu profile: vLLM refuses its Ray executor on CPU (current platform cpu does not support ray)",
            "set it to auto or mp (vLLM's own multi-node backend)."))
    elif nnodes > 1 and backend == "mp" and (tensor * pipeline) % nnodes:
        problems.append(_problem(
            host, "vllm_serve_tensor_parallel_size", tensor,
            "x pipeline %d does not split evenly over %d node(s) (the mp backend runs the same number of ranks on "
            "each)" % (pipeline, nnodes), "make tensor parallel x pipeline parallel a multiple of %d." % nnodes))

    serving = max(nnodes, 1)
    nodes = {}
    for rank, node in enumerate(cluster):
        if rank < serving:
            nodes[node["host"]] = dict(node_rank=rank, role="head" if rank == 0 else "worker")
        else:
            nodes[node["host"]] = dict(node_rank=None, role="idle")
    return dict(profile=profile, backend=backend, tensor_parallel=tensor, pipeline_parallel=pipeline, nnodes=nnodes,
                master_host=head["host"], nodes=nodes, problems=problems,
                cpu_ray_shim=options.get("cpu_ray_shim", "") if backend == "ray" and on_cpu else "")


def serving_image(profile, image, images, registry_mirror):
    """The image every serving and Ray container runs: image when set, else images[profile];
    a registry mirror replaces the name's registry host (a first part with a dot in it)."""
    named = image or images.get(profile, "")
    if not registry_mirror or not named:
        return named
    first, slash, rest = named.partition("/")
    if slash and "." in first:
        named = rest
    return registry_mirror.rstrip("/") + "/" + named


def cluster_plan(cluster, options, images, left_out=()):
    """The whole cluster's plan, decided once in preflight and read by every phase.

    cluster: the nodes of inference_cluster, head first, each with host, address, vendor,
    count, vcpus and erdma_nics (see resolve_plan). options: the serving options of
    resolve_plan. images: image, images ({profile: image}), registry_mirror, derive (bool),
    ray_requirement, erdma_packages (paths on the control node). left_out: nodes
    of the cluster this run does not reach (--limit), whose facts are unknown.

    Returns resolve_plan's keys, plus engine_image (the vLLM image named), image (what every
    node runs: engine_image, or the image derived from it with Ray), image_derived,
    ray_requirement, erdma_packages (the eRDMA user-space packages the derived image gets: on
    NVIDIA where a node has eRDMA NICs), needs_ray (the backend drives the nodes through
    Ray), head, head_address, addresses ({host: private address}), each node's address and
    accelerators in nodes, and the problems, reported on the head.
    """
    head = cluster[0]["host"]
    if left_out and int(options.get("nodes", 0)) != 1:
        return dict(problems=[
            "On %s: this run leaves out %s (--limit), but the serving plan spans the nodes of inference_cluster "
            "and needs what each one has. Fix: run without --limit, or set vllm_serve_nodes: 1 to serve from the "
            "head alone." % (head, ", ".join(left_out))])
    plan = resolve_plan(cluster, options, head)
    for node in cluster:
        plan["nodes"][node["host"]].update(
            address=node.get("address", ""), vendor=node.get("vendor", "cpu"), count=int(node.get("count", 0)),
            erdma_nics=int(node.get("erdma_nics", 0)))
    engine_image = serving_image(plan["profile"], images.get("image", ""), images.get("images") or {},
                                 images.get("registry_mirror", ""))
    # The cluster phase forms Ray with this image on every node: the collection derives it from
    # the engine image with Ray at the cluster's pin, unless the operator's image is used as is.
    derive = bool(images.get("derive")) and bool(engine_image)
    # NCCL in the image needs the erdma verbs provider where the nodes have eRDMA NICs.
    erdma = plan["profile"] == "nvidia" and any(int(node.get("erdma_nics", 0)) > 0 for node in cluster)
    erdma_packages = list(images.get("erdma_packages") or []) if derive and erdma else []
    plan.update(
        engine_image=engine_image,
        image=derived_image_name(engine_image, images.get("ray_requirement", ""),
                                 [os.path.basename(path) for path in erdma_packages]) if derive else engine_image,
        image_derived=derive,
        ray_requirement=images.get("ray_requirement", "") if derive else "",
        erdma_packages=erdma_packages,
        needs_ray=plan["backend"] == "ray",
        head=head,
        head_address=cluster[0].get("address", ""),
        addresses={node["host"]: node.get("address", "") for node in cluster},
    )
    return plan


def _cpu_problems(host, head, tensor, pipeline, nnodes, instances):
    problems = []
    if nnodes <= 1 and tensor > 1:
        problems.append(_problem(
            host, "vllm_serve_tensor_parallel_size", tensor,
            "with the cpu profile: vLLM on CPU serves one rank per node here",
            "leave vllm_serve_tensor_parallel_size at 0 (automatic) or 1; use vllm_serve_instances to use more "
            "cores, or more nodes."))
    elif nnodes > 1 and tensor != nnodes:
        problems.append(_problem(
            host, "vllm_serve_tensor_parallel_size", tensor,
            "with the cpu profile on %d nodes: one rank runs per node" % nnodes,
            "leave it at 0 (automatic: %d)." % nnodes))
    if nnodes > 1 and pipeline > 1:
        problems.append(_problem(
            host, "vllm_serve_pipeline_parallel_size", pipeline,
            "with the cpu profile across nodes: vLLM's CPU path fails the first request (vllm#37933)",
            "leave it at 0 (automatic: 1); the nodes share the model by tensor parallel."))
    vcpus = int(head.get("vcpus", 1))
    if instances > vcpus:
        problems.append(_problem(
            host, "vllm_serve_instances", instances,
            "but the head has %d CPU(s): each instance needs at least one" % vcpus,
            "set vllm_serve_instances to at most %d." % vcpus))
    return problems


def _accelerator_problems(host, serving_nodes, vendor, tensor, pipeline, nnodes, instances, tensor_given):
    count = int(serving_nodes[0].get("count", 0))
    if nnodes <= 1:
        if tensor * instances <= count:
            return []
        if not tensor_given:
            return [_problem(
                host, "vllm_serve_instances", instances,
                "needs at least one %s accelerator each but the head has %d" % (vendor, count),
                "set vllm_serve_instances to at most %d." % max(count, 1))]
        return [_problem(
            host, "vllm_serve_tensor_parallel_size", tensor,
            "x vllm_serve_instances=%d needs %d %s accelerator(s) but the head has %d"
            % (instances, tensor * instances, vendor, count),
            "make tensor parallel x instances at most %d (0 = automatic)." % count)]
    problems = []
    total = sum(int(node.get("count", 0)) for node in serving_nodes)
    for node in serving_nodes:
        if node.get("vendor") != vendor:
            problems.append(_problem(
                host, "inference_cluster", node["host"],
                "has %s accelerators while the head has %s" % (node.get("vendor"), vendor),
                "serve across nodes of one kind: take %s out or set vllm_serve_nodes." % node["host"]))
    if tensor * pipeline != total:
        problems.append(_problem(
            host, "vllm_serve_tensor_parallel_size", tensor,
            "x vllm_serve_pipeline_parallel_size=%d = %d, but the %d serving node(s) have %d %s accelerator(s)"
            % (pipeline, tensor * pipeline, nnodes, total, vendor),
            "leave both at 0 (automatic: tensor = accelerators per node, pipeline = nodes) or make their product %d."
            % total))
    return problems


def accelerator_options(profile, erdma_nics, device_ids=None):
    """How a container gets the node's accelerators: Docker options shared by every spec."""
    if profile == "nvidia":
        request = {"driver": "nvidia", "capabilities": [["gpu"]]}
        request.update({"device_ids": [str(index) for index in device_ids]} if device_ids else {"count": -1})
        options = dict(ipc_mode="host", privileged=False, device_requests=[request])
    elif profile == "vastai":
        options = dict(ipc_mode="host", privileged=True, device_requests=[])
    else:
        return dict(ipc_mode="", privileged=False, device_requests=[], devices=[], ulimits=[])
    options["devices"] = ["/dev/infiniband:/dev/infiniband"] if profile == "nvidia" and int(erdma_nics) > 0 else []
    options["ulimits"] = ["memlock:-1:-1", "stack:67108864:67108864"]
    return options


def node_env(node):
    """The environment every container of a node shares: its address, the socket interface
    of the route to its peers (NCCL, Gloo), the eRDMA NCCL settings where eRDMA NICs exist."""
    env = {
        "VLLM_HOST_IP": node["host_ip"],
        "NCCL_SOCKET_IFNAME": node["ifname"],
        "GLOO_SOCKET_IFNAME": node["ifname"],
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if node["profile"] == "nvidia" and int(node.get("erdma_nics", 0)) > 0:
        env.update(ERDMA_NCCL_ENV)
    if node["profile"] == "cpu":
        # The CPU profile runs eager (--enforce-eager); this keeps the few helpers vLLM wraps in
        # torch.compile eager too. Measured: tensor parallel across nodes otherwise compiles
        # get_masked_input_and_mask with inductor at the first request, which needs a C++
        # compiler in the image ("InvalidCxxCompiler: No working C++ compiler found").
        env["TORCHDYNAMO_DISABLE"] = "1"
    return env


def cpu_ray_shim(path):
    """SANDBOX ONLY: the volumes and environment that load sandbox/ray_on_cpu (a sitecustomize
    on PYTHONPATH) into a container; none when path is empty."""
    if not path:
        return [], {}
    return [path + ":" + CPU_RAY_SHIM_MOUNT + ":ro"], {"PYTHONPATH": CPU_RAY_SHIM_MOUNT}


def _ray_client_env():
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": RAY_TOKEN_PATH, "RAY_USAGE_STATS_ENABLED": "0"}


# VastAI's deploy script caps each instance at 4 concurrent sequences (its HAProxy maxconn too).
VASTAI_MAX_NUM_SEQS = 4
CPU_MAX_NUM_SEQS = 256
# vLLM's own --max-num-seqs default on GPUs (vllm/engine/arg_utils.py): 1024 from 70 GiB, else 256.
VLLM_GPU_MAX_NUM_SEQS = ((70 * 1024, 1024), (0, 256))


def max_num_seqs(profile, setting, accelerator_memory_mib=0):
    """(the --max-num-seqs to pass, None for vLLM's own default; the sequences one instance
    takes at once, the balancer's maxconn per instance). setting: vllm_serve_max_num_seqs, 0
    for the profile's default: the vendor's 4 on VastAI, vLLM's own on NVIDIA, 256 on CPU."""
    if int(setting) > 0:
        return int(setting), int(setting)
    if profile == "vastai":
        return VASTAI_MAX_NUM_SEQS, VASTAI_MAX_NUM_SEQS
    if profile == "cpu":
        return CPU_MAX_NUM_SEQS, CPU_MAX_NUM_SEQS
    return None, next(seqs for memory, seqs in VLLM_GPU_MAX_NUM_SEQS if int(accelerator_memory_mib or 0) >= memory)


def _serving_args(plan, node):
    profile = plan["profile"]
    # On VastAI, the flags the vendor's deploy script passes, and only those (plus what the
    # operator sets): no --dtype auto, no --pipeline-parallel-size 1, no chunked prefill.
    as_vendor = profile == "vastai"
    seqs, _per_instance = max_num_seqs(profile, node["max_num_seqs"], node["accelerator_memory_mib"])
    args = [
        "/model",
        "--served-model-name", node["served_model_name"],
        "--max-model-len", str(node["max_model_len"]),
    ]
    args += ["--max-num-seqs", str(seqs)] if seqs else []
    args += ["--dtype", node["dtype"]] if not (as_vendor and node["dtype"] == "auto") else []
    args += ["--tensor-parallel-size", str(plan["tensor_parallel"])]
    if not (as_vendor and int(plan["pipeline_parallel"]) == 1):
        args += ["--pipeline-parallel-size", str(plan["pipeline_parallel"])]
    if plan["backend"] == "ray":
        args += ["--distributed-executor-backend", "ray"]
    elif plan["backend"] == "mp":
        args += ["--distributed-executor-backend", "mp", "--nnodes", str(plan["nnodes"]),
                 "--node-rank", str(plan["node_rank"]), "--master-addr", node["master_addr"],
                 "--master-port", str(node["master_port"])]
    if profile == "nvidia":
        args += ["--gpu-memory-utilization", str(node["gpu_memory_utilization"])]
    if profile == "cpu":
        args += ["--kv-cache-memory-bytes", str(node["cpu_kv_cache_bytes"])]
    if node["enable_chunked_prefill"] and not as_vendor:
        args.append("--enable-chunked-prefill")
    if node["trust_remote_code"] or as_vendor:
        args.append("--trust-remote-code")
    if node["enforce_eager"] or profile in ("vastai", "cpu"):
        args.append("--enforce-eager")
    if node["reasoning_parser"]:
        args += ["--reasoning-parser", node["reasoning_parser"]]
    if node["tool_call_parser"]:
        args += ["--enable-auto-tool-choice", "--tool-call-parser", node["tool_call_parser"]]
    return args


def _slice_env(profile, index, devices, instances, vcpus):
    """The share of the node one of several instances gets (its accelerators or CPU cores)."""
    if instances == 1:
        return {}
    if profile == "vastai":
        return {"VACC_VISIBLE_DEVICES": ",".join(str(device) for device in devices)}
    if profile == "cpu":
        cores = max(int(vcpus) // instances, 1)
        return {"VLLM_CPU_OMP_THREADS_BIND": "%d-%d" % (index * cores, (index + 1) * cores - 1)}
    return {}


def vllm_specs(plan, node):
    """The vLLM containers this node runs under the plan: the API server (one instance, or the
    head of a multi-node plan), N instances behind the balancer, a headless rank (a worker of
    an mp plan), or none (an idle node, or a worker of a ray plan: its Ray node serves).

    node: this node's values (see the vllm_serve role's container.yml for every key).
    """
    role, backend, profile = plan["role"], plan["backend"], plan["profile"]
    if role == "idle" or (role == "worker" and backend == "ray"):
        return []
    instances = int(node["instances"]) if role == "head" and backend == "none" else 1
    headless = role == "worker"
    base_env = node_env(dict(node, profile=profile))
    base_volumes = [node["model_source"] + ":/model:ro"]
    network_mode, pid_mode = node["network_mode"], ""
    if backend == "ray":
        # The API server is a Ray driver on the head's Ray node: it shares that container's
        # network and process namespaces (Ray finds its raylet by process) and Ray's session
        # folder, and reads the Ray token from the same file.
        ray = node["ray"]
        network_mode = pid_mode = "container:" + ray["container"]
        base_env.update(_ray_client_env())
        base_env["RAY_ADDRESS"] = "auto"
        # The engine reaches the worker on its own node through ZeroMQ ipc:// sockets it creates
        # under VLLM_RPC_BASE_PATH (the temp folder by default): in Ray's session folder, which
        # the head's Ray node shares, rather than in this container's own /tmp, where that worker
        # never finds them and the engine waits forever after loading the weights (measured).
        base_env["VLLM_RPC_BASE_PATH"] = RAY_TEMP_DIR
        base_volumes += [ray["temp_dir"] + ":" + RAY_TEMP_DIR, ray["token_file"] + ":" + RAY_TOKEN_PATH + ":ro"]
        shim_volumes, shim_env = cpu_ray_shim(plan.get("cpu_ray_shim", ""))
        base_volumes += shim_volumes
        base_env.update(shim_env)
        # vLLM's engine talks to the worker on its own node through shared memory: on CPU
        # (no ipc: host) the API server joins the Ray node's IPC namespace.
        ray_ipc = "container:" + ray["container"] if profile == "cpu" else ""
    specs = []
    tensor = int(plan["tensor_parallel"])
    for index in range(instances):
        single = instances == 1
        port = int(node["port"]) if single else int(node["instance_base_port"]) + index
        devices = list(range(index * tensor, (index + 1) * tensor))
        command = _serving_args(plan, node)
        if headless:
            command.append("--headless")
        else:
            command += ["--host", node["listen"] if single else "127.0.0.1", "--port", str(port)]
        command += list(node["extra_args"])
        env = dict(base_env)
        env.update(_slice_env(profile, index, devices, instances, node["vcpus"]))
        env.update(node["extra_env"])
        options = accelerator_options(profile, node.get("erdma_nics", 0), devices if profile == "nvidia" and not single
                                      else None)
        if backend == "ray" and ray_ipc:
            options["ipc_mode"] = ray_ipc
        spec = dict(
            name=node["name"] if single else "%s-%d" % (node["name"], index),
            role="headless" if headless else ("api" if single else "instance"),
            port=None if headless else port,
            probe_url="" if headless else "http://%s:%d" % (node["probe_address"] if single else "127.0.0.1", port),
            image=node["image"],
            image_id=node["image_id"],
            entrypoint=["vllm", "serve"],
            command=command,
            env=env,
            # A headless rank serves no API: it does not get the key.
            env_file="" if headless else node["env_file"],
            api_key_sha256="" if headless else node["api_key_sha256"],
            volumes=base_volumes,
            network_mode=network_mode,
            pid_mode=pid_mode,
            restart_policy=node["restart_policy"],
            shm_size="" if options["ipc_mode"] else node["shm_size"],
        )
        spec.update(options)
        specs.append(spec)
    return specs


def ray_ports(first, last):
    """Every Ray port of a node from one range [first, last]: the fixed ports in RAY_FIXED_PORTS
    order from first, the worker ports from first + RAY_WORKER_PORTS_OFFSET to last."""
    first, last = int(first), int(last)
    ports = {name: first + offset for offset, name in enumerate(RAY_FIXED_PORTS)}
    ports["min-worker-port"] = first + RAY_WORKER_PORTS_OFFSET
    ports["max-worker-port"] = last
    return ports


def ray_ports_problem(host, ports):
    """A message when ports ([first, last]) cannot hold Ray's ports, else ''."""
    needed = RAY_WORKER_PORTS_OFFSET + RAY_MIN_WORKER_PORTS
    if len(ports) == 2:
        first, last = int(ports[0]), int(ports[1])
        if 1024 <= first and last <= 65535 and last - first + 1 >= needed:
            return ""
    return _problem(
        host, "ray_cluster_ports", list(ports),
        "is not a range of at least %d ports between 1024 and 65535" % needed,
        "give [first, last] with last - first + 1 >= %d, e.g. [6379, 6579]; open it between the nodes only." % needed)


def ray_port_clashes(host, ports, named):
    """A message naming each of the named ports ({variable: port}) inside the Ray range, else ''."""
    first, last = int(ports[0]), int(ports[-1])
    inside = ["%s=%s" % (name, port) for name, port in sorted(named.items()) if first <= int(port) <= last]
    if not inside:
        return ""
    return "On %s: %s inside ray_cluster_ports %s. Fix: move one of them; vLLM and Ray cannot share a port." % (
        host, " and ".join(inside) + (" is" if len(inside) == 1 else " are"), [first, last])


def ray_node_spec(node):
    """The Ray node container of a node: the head (`ray start --head`) or a worker joining the
    head's private address. Every listener's port comes from one range (a firewall allows it
    between the nodes only); the dashboard listens on 127.0.0.1 or is off; token
    authentication is on, the token read from a 0600 file mounted read-only.

    node: name, image, image_id, head (bool), host_ip, head_ip, ports ([first, last]), ifname,
    profile, count (accelerators), erdma_nics, network_mode, restart_policy, shm_size,
    object_store_bytes, temp_dir, token_file, token_sha256, model_source ('' for none),
    dashboard (bool), extra_env, extra_args, cpu_ray_shim (SANDBOX ONLY: the plan's, '' for none).
    """
    ports = ray_ports(*node["ports"])
    command = ["start", "--block", "--node-ip-address=" + node["host_ip"]]
    if node["head"]:
        command += ["--head", "--port=%d" % ports["port"], "--ray-client-server-port=%d" % ports["ray-client-server-port"]]
        if node["dashboard"]:
            command += ["--dashboard-host=127.0.0.1", "--dashboard-port=%d" % ports["dashboard-port"]]
        else:
            command.append("--include-dashboard=false")
    else:
        command.append("--address=%s:%d" % (node["head_ip"], ports["port"]))
    for name in ("node-manager-port", "object-manager-port", "runtime-env-agent-port", "dashboard-agent-grpc-port",
                 "dashboard-agent-listen-port", "metrics-export-port", "min-worker-port", "max-worker-port"):
        command.append("--%s=%d" % (name, ports[name]))
    command += ["--object-store-memory=%d" % int(node["object_store_bytes"]), "--disable-usage-stats"]
    if node["profile"] == "nvidia":
        command.append("--num-gpus=%d" % int(node["count"]))
    shim_volumes, shim_env = cpu_ray_shim(node.get("cpu_ray_shim", ""))
    if shim_volumes:
        command.append('--resources={"%s": 1}' % CPU_RAY_RESOURCE)
    command += list(node["extra_args"])

    env = node_env(node)
    env.update(_ray_client_env())
    if node["profile"] == "vastai":
        env["VACC_VISIBLE_DEVICES"] = ",".join(str(die) for die in range(int(node["count"])))
    env.update(shim_env)
    env.update(node["extra_env"])
    volumes = [node["temp_dir"] + ":" + RAY_TEMP_DIR, node["token_file"] + ":" + RAY_TOKEN_PATH + ":ro"] + shim_volumes
    if node["model_source"]:
        # vLLM's Ray workers load the weights inside the Ray node containers.
        volumes.append(node["model_source"] + ":/model:ro")
    options = accelerator_options(node["profile"], node.get("erdma_nics", 0))
    if shim_volumes:
        options["ipc_mode"] = "shareable"  # the API server on CPU joins it (see vllm_specs)
    spec = dict(
        name=node["name"],
        role="ray-head" if node["head"] else "ray-worker",
        image=node["image"],
        image_id=node["image_id"],
        entrypoint=["ray"],
        command=command,
        env=env,
        volumes=volumes,
        network_mode=node["network_mode"],
        pid_mode="",
        restart_policy=node["restart_policy"],
        shm_size="" if options["ipc_mode"] == "host" else node["shm_size"],
        ports=ports,
        # A new token must restart every Ray process: its digest is part of the spec.
        token_sha256=node.get("token_sha256", ""),
    )
    spec.update(options)
    return spec
