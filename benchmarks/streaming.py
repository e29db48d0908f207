"""Training from prepared shards (data.stream): peak memory against dataset size, speed against memory.

`streaming_memory` writes prepared datasets of 64x64 colour noise images (uniform noise: PNG cannot
compress it, so a record is as large as the image) of each of `--sizes_gb` under `--out_dir`
(kept and reused when rerun), and a small one of SMALL_IMAGES, then trains the conv VAE for
`--steps` steps on each, every run in a fresh process, and records the process's peak resident
memory (ru_maxrss). The small dataset is trained twice: from its shards and from memory (the same
images as an .npz), the baseline the issue compares with.

`streaming_throughput` measures training images/s in steady state (benchmarks.throughput's
measurement: `--steps` timed steps after `--warmup`) of `--model` on Fashion-MNIST from memory and
from its prepared shards (`--data_dir`, made by `run.py --mode=prepare --dataset=fashion_mnist`),
alternating the two `--rounds` times; the ratio's median is over rounds, each from one pair.

`streaming_input` profiles `--steps` training steps of `--model` (after `--warmup`), from memory and
from the prepared shards, with `--profile_batches` as a user would, and reads from the trace the
time each step spent waiting for its batch: the IteratorGetNext op inside each of Keras' "Profiled
batch" spans, the quantity TensorBoard's input_pipeline_analyzer calls input time. (Its own step
breakdown needs step groups that xprof 2.24 builds only with a GPU or TPU: on a CPU-only host it
reports "No step time measured", Keras 2's "train" step markers added or not.)
"""

import glob
import os
import statistics
import subprocess
import sys
import tempfile
import types

import numpy as np
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from benchmarks import results
from benchmarks import throughput
from keras_gen.data import shards
from keras_gen.runs import layout
from keras_gen.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_SHAPE = (64, 64, 3)
SMALL_IMAGES = 4000
TEST_IMAGES = 1000
IMAGES_PER_SHARD = 20_000
# What one 64x64x3 noise image takes as a record (PNG of incompressible pixels, plus framing); measured
# on the first dataset written, and only used to choose the image count of a size.
RECORD_BYTES = 12_400
_MARK = "peak_rss_kb="


def noise_dataset(directory, count, seed=0):
    """A prepared dataset of `count` noise training images (and TEST_IMAGES test ones), written once."""
    if shards.is_prepared(directory):
        return directory
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    entries = {}
    for split, number in (("train", count), ("test", TEST_IMAGES)):
        writer = shards.Writer(directory, split, max(1, -(-number // IMAGES_PER_SHARD)), has_labels=False)
        for index in range(number):
            writer.add(rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8), None, index)
        entries[split] = writer.close()
    shards.write_index(directory, IMAGE_SHAPE, None, entries, source=f"uniform noise, seed {seed}")
    return directory


def noise_npz(path, count, seed=0):
    """The same images as `noise_dataset(..., count, seed)`, as an .npz the in-memory path reads."""
    if not os.path.exists(path):
        rng = np.random.default_rng(seed)
        x_train = np.stack([rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8) for _ in range(count)])
        x_test = np.stack([rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8) for _ in range(TEST_IMAGES)])
        np.savez(path, x_train=x_train, x_test=x_test)
    return path


def dataset_bytes(directory):
    return sum(shard.bytes for split in shards.SPLITS for shard in shards.open_split(directory, split).shards)


def peak_memory_of_training(data_dir, steps, batch_size):
    """Peak resident memory (MB) of `run.py` training the conv VAE on `data_dir` for `steps` steps."""
    arguments = [
        "run.py", "--model=vae", "--dataset=custom", f"--data_dir={data_dir}", "--image_size=64",
        f"--batch_size={batch_size}", "--epochs=1", f"--steps_per_epoch={steps}", "--quality_every=0", "--noexport",
        "--grid_size=16", f"--out_dir={tempfile.mkdtemp(prefix='bench_streaming_')}",
    ]  # fmt: skip
    program = (
        "import resource, runpy, sys\n"
        f"sys.argv = {arguments!r}\n"
        "try:\n    runpy.run_path('run.py', run_name='__main__')\n"
        f"finally:\n    print('{_MARK}%d' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    completed = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, check=False)
    marks = [line for line in completed.stderr.splitlines() if line.startswith(_MARK)]
    if completed.returncode != 0 or not marks:
        raise RuntimeError(f"training on {data_dir} failed: {completed.stderr[-2000:]}")
    return int(marks[-1][len(_MARK) :]) / 1024


def memory(settings):
    root = settings.out_dir or tempfile.mkdtemp(prefix="bench_streaming_data_")
    steps = settings.steps
    rows, measured = [], []
    runs = [("shards", f"{SMALL_IMAGES} images", noise_dataset(os.path.join(root, "small"), SMALL_IMAGES))]
    runs.insert(
        0, ("memory (.npz)", f"{SMALL_IMAGES} images", noise_npz(os.path.join(root, "small.npz"), SMALL_IMAGES))
    )
    for size in settings.sizes_gb:
        count = int(float(size) * 1e9 / RECORD_BYTES) - TEST_IMAGES  # The size is of both splits' shards.
        runs.append(("shards", f"{size} GB", noise_dataset(os.path.join(root, f"{size}gb"), count)))
    for source, label, data_dir in runs:
        on_disk = os.path.getsize(data_dir) if data_dir.endswith(".npz") else dataset_bytes(data_dir)
        peak = peak_memory_of_training(data_dir, steps, settings.batch_size)
        record = {"source": source, "dataset": label, "bytes_on_disk": on_disk, "peak_rss_mb": round(peak)}
        measured.append(record)
        rows.append([source, label, f"{on_disk / 1e9:.2f}", f"{peak:,.0f}"])
        print(rows[-1], flush=True)
    small = next(r["peak_rss_mb"] for r in measured if r["source"] == "shards" and r["dataset"].endswith("images"))
    largest_above = max(r["peak_rss_mb"] for r in measured if r["source"] == "shards") - small
    summary = {
        "steps": steps, "batch_size": settings.batch_size, "image_shape": list(IMAGE_SHAPE),
        "largest_peak_above_small_mb": largest_above,
        "in_memory_small_mb": next(r["peak_rss_mb"] for r in measured if r["source"] != "shards"),
    }  # fmt: skip
    columns = ["read from", "dataset", "GB on disk", "peak resident MB"]
    return results.make(
        "streaming_memory", columns, rows, measured, summary, title="Peak memory of training against dataset size"
    )


def speed(settings):
    if not settings.data_dir or not shards.is_prepared(settings.data_dir):
        raise SystemExit(
            "streaming_throughput needs --data_dir=DIR of Fashion-MNIST prepared with "
            "`python run.py --mode=prepare --dataset=fashion_mnist --out_dir=DIR`"
        )
    pairs = []
    for _ in range(settings.rounds):
        in_memory = throughput.measure(types.SimpleNamespace(**{**vars(settings), "data_dir": None}))
        streamed = throughput.measure(settings)
        pairs.append((in_memory, streamed))
        print(in_memory["images_per_second"], streamed["images_per_second"], flush=True)
    rows = [
        [round_number + 1, f"{a['images_per_second']:.0f}", f"{b['images_per_second']:.0f}",
         f"{b['images_per_second'] / a['images_per_second']:.3f}"]
        for round_number, (a, b) in enumerate(pairs)
    ]  # fmt: skip
    ratios = [b["images_per_second"] / a["images_per_second"] for a, b in pairs]
    summary = {
        "model": settings.model, "median_ratio": statistics.median(ratios), "steps": settings.steps,
        "dataset": pairs[0][0]["dataset"],
    }  # fmt: skip
    columns = ["round", "memory images/s", "shards images/s", "shards / memory"]
    title = f"{settings.model}: training from prepared shards against from memory"
    return results.make("streaming_throughput", columns, rows, [dict(zip(("memory", "shards"), p)) for p in pairs],
                        summary, title=title)  # fmt: skip


# Host events of the trace: Keras' span around each profiled training step, and the op by which a
# step takes its batch from the tf.data iterator (it returns at once when a batch is ready).
STEP_EVENT = "Profiled batch"
INPUT_EVENT = "IteratorGetNextOp::DoCompute"


def step_input_times(xplane_path):
    """[(step seconds, seconds of it waiting for input)] of every profiled step in an .xplane.pb."""
    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as handle:
        space.ParseFromString(handle.read())
    spans = {STEP_EVENT: [], INPUT_EVENT: []}
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id)
                if name in spans:
                    start = line.timestamp_ns * 1000 + event.offset_ps
                    spans[name].append((start, start + event.duration_ps))
    steps = []
    for step_start, step_end in sorted(spans[STEP_EVENT]):
        waiting = sum(max(0, min(end, step_end) - max(start, step_start)) for start, end in spans[INPUT_EVENT])
        steps.append(((step_end - step_start) / 1e12, waiting / 1e12))
    return steps


def input_wait(settings):
    if not settings.data_dir or not shards.is_prepared(settings.data_dir):
        raise SystemExit(
            "streaming_input needs --data_dir=DIR of Fashion-MNIST prepared with "
            "`python run.py --mode=prepare --dataset=fashion_mnist --out_dir=DIR`"
        )
    rows, measured = [], []
    for source in ("memory", "shards"):
        data_dir = settings.data_dir if source == "shards" else None
        source_settings = types.SimpleNamespace(**{**vars(settings), "data_dir": data_dir})
        out_dir = tempfile.mkdtemp(prefix=f"bench_streaming_input_{source}_")
        config = throughput.throughput_config(source_settings, out_dir, settings.warmup + settings.steps)
        config.profile_batches = f"{settings.warmup + 1},{settings.warmup + settings.steps}"
        trainer.train(config)
        # Where TensorBoard's profiler writes under the run's log directory.
        (trace,) = glob.glob(os.path.join(out_dir, layout.LOGS, "train", "plugins", "profile", "*", "*.xplane.pb"))
        steps = step_input_times(trace)
        step_ms = statistics.median(step for step, _ in steps) * 1e3
        wait_ms = statistics.median(wait for _, wait in steps) * 1e3
        share = sum(wait for _, wait in steps) / sum(step for step, _ in steps)
        record = {
            "source": source, "dataset": config.dataset, "profiled_steps": len(steps), "median_step_ms": step_ms,
            "median_input_ms": wait_ms, "max_input_ms": max(wait for _, wait in steps) * 1e3,
            "input_share": share, "trace": trace,
        }  # fmt: skip
        measured.append(record)
        rows.append([source, len(steps), f"{step_ms:.1f}", f"{wait_ms:.3f}", f"{record['max_input_ms']:.3f}",
                     f"{100 * share:.2f}%"])  # fmt: skip
        print(rows[-1], flush=True)
    summary = {"model": settings.model, "shards_input_share": measured[-1]["input_share"]}
    columns = ["read from", "profiled steps", "median step ms", "median input wait ms", "longest input wait ms",
               "step time waiting for input"]  # fmt: skip
    title = f"{settings.model}: step time waiting for input, in the profiler's trace"
    return results.make("streaming_input", columns, rows, measured, summary, title=title)
