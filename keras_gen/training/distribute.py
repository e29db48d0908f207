"""tf.distribute strategies chosen by name (`--distribute`), and who writes what under them.

Data parallelism here is synchronous: every replica holds the same weights, takes an equal share of
the global batch (`--batch_size`), and the gradients are summed over replicas before every update.
Losses are reduced over the global batch (`losses.average_over_global_batch`), batch norm computes
its statistics over the global batch, and noise is drawn for the global batch and sliced per replica
(`models.base.GenerativeModel.replica_noise`), so one step means the same on 1, 2 or 8 replicas.

Several machines follow the tf.distribute multi-worker guide: every worker runs the same command with
its own `TF_CONFIG`; the chief (task "chief", or "worker" 0 when the cluster has no chief) writes the
run directory, the other workers write to temporary directories that they delete when they end.
"""

import functools
import json
import os
import re

import tensorflow as tf

from keras_gen import errors

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
TF_CONFIG = "TF_CONFIG"
_WORKER_TASK_TYPES = ("chief", "worker")


def parse_tf_config(environ=None):
    """The cluster and task of `$TF_CONFIG`, validated; raises UserError naming what is wrong.

    Returns:
        (cluster, task_type, task_index): cluster is {task type: ["host:port", ...]}.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(TF_CONFIG)
    if not text:
        raise errors.UserError(
            f"--distribute=multi_worker needs ${TF_CONFIG}, the cluster and this worker's task, for example "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(text)
    except ValueError as error:
        raise errors.UserError(f"${TF_CONFIG} is not valid JSON ({error}): {text[:120]!r}") from None
    if not isinstance(config, dict):
        raise errors.UserError(f"${TF_CONFIG}={text[:120]!r}; expected a JSON object with 'cluster' and 'task'")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise errors.UserError(
            f"${TF_CONFIG} has no 'cluster' (a map from task type to 'host:port' lists): {text[:120]!r}"
        )
    for task_type, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            isinstance(address, str) and ":" in address for address in addresses
        ):
            raise errors.UserError(f"${TF_CONFIG} cluster[{task_type!r}]={addresses!r}; expected a list of 'host:port'")
    if not any(cluster.get(task_type) for task_type in _WORKER_TASK_TYPES):
        raise errors.UserError(f"${TF_CONFIG} cluster has no 'worker' or 'chief' tasks: {sorted(cluster)}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise errors.UserError(f"${TF_CONFIG} has no 'task' with 'type' and 'index': {text[:120]!r}")
    task_type, task_index = task["type"], task["index"]
    if task_type not in cluster:
        raise errors.UserError(f"${TF_CONFIG} task type {task_type!r} is not in the cluster {sorted(cluster)}")
    if not isinstance(task_index, int) or not 0 <= task_index < len(cluster[task_type]):
        raise errors.UserError(
            f"${TF_CONFIG} task index {task_index!r}; expected 0 to {len(cluster[task_type]) - 1} "
            f"for the {len(cluster[task_type])} {task_type!r} task(s)"
        )
    return cluster, task_type, task_index


def is_chief(cluster, task_type, task_index):
    """The chief writes the run: task "chief", or worker 0 of a cluster without one (TF's convention)."""
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and "chief" not in cluster


def get_strategy(name="auto", peer_timeout=None):
    """Returns the strategy called `name`.

    - auto: MirroredStrategy over all local GPUs when there are several, else the default strategy.
    - default: no distribution (one device).
    - mirrored: synchronous data parallelism over all local devices (GPUs, else the CPU's logical devices).
    - multi_worker: synchronous data parallelism over the machines described by $TF_CONFIG; must be
      created before TensorFlow runs any other operation in the process. A worker that sends no
      heartbeat for `peer_timeout` seconds (None: TensorFlow's default) is lost: the others'
      collectives fail (`lost_peer`).
    """
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name in ("mirrored", "multi_worker"):
        if name == "multi_worker":
            cluster, _, _ = parse_tf_config()
            if peer_timeout is not None:
                _configure_peer_timeout(cluster, peer_timeout)
        return _shared_strategy(name)
    raise errors.UserError(f"--distribute={name}; expected one of {', '.join(STRATEGIES)}")


@functools.cache
def _shared_strategy(name):
    """One strategy of each kind per process. Every new MirroredStrategy numbers its collective
    operations from the same first key, and TensorFlow caches collectives by key: a second strategy
    in the same process (a second run in a notebook or a test session) then aborts with "Shape
    mismatch in the collective instance". A multi-worker strategy can only be made once anyway."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _configure_peer_timeout(cluster, peer_timeout):
    """The coordination service MultiWorkerMirroredStrategy would start, with our heartbeat timeout.

    The strategy configures the service only when nothing has (collective_all_reduce_strategy.py), with
    TensorFlow's default timeout; TensorFlow has no public setting for it.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return  # Set before (a second strategy in this process): TensorFlow reads it once.
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
        for job in _WORKER_TASK_TYPES
        if cluster.get(job)
    ]
    leader = "chief" if cluster.get("chief") else "worker"
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{leader}/replica:0/task:0",
        coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=int(peer_timeout * 1000),
    )


def lost_peer(error):
    """The task ("/job:worker/replica:0/task:1") a multi-worker error says was lost; None for other errors."""
    if not isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)):
        return None
    message = getattr(error, "message", str(error))
    found = re.search(r"/job:\w+/replica:\d+/task:\d+", message) or re.search(r"/job:\w+/task:\d+", message)
    return found.group(0) if found else "a peer"


def check_global_batch(batch_size, strategy):
    """Refuses a global batch that the replicas cannot share equally."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise errors.UserError(
            f"--batch_size={batch_size} cannot be split over {replicas} replicas; expected a multiple of "
            f"{replicas} (the global batch is divided equally, "
            f"e.g. --batch_size={max(1, batch_size // replicas) * replicas})"
        )


def num_workers(strategy):
    """Machines (worker and chief tasks) in `strategy`'s cluster; 1 for a strategy of one process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(task_type, ())) for task_type in _WORKER_TASK_TYPES)


def task_of(strategy):
    """(is_chief, description) of this process in `strategy`'s cluster; a lone process is the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, "single process"
    cluster = resolver.cluster_spec().as_dict()
    chief = is_chief(cluster, resolver.task_type, resolver.task_id)
    return chief, f"{resolver.task_type} {resolver.task_id} of a {sum(map(len, cluster.values()))}-task cluster"
