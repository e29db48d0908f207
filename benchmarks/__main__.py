"""`python -m benchmarks NAME [--flags]`: measure, print the table, write the result file.

    training      an epoch table of --model on --dataset (seconds, images/s, test metrics)
    likelihoods   the VAE family's test likelihoods (trains or finishes each run, then evaluates)
    quality       the sample-quality metrics' cost on N test vs N training images
    serving       every signature of every model type, timed in TF Serving's execution path
    layers        the generator's doubling step, convolution vs matrix product
    throughput    training images/s against the PyTorch peer (--peer), in alternating --rounds
    precision     the same run under each --policies dtype policy, with the curves (--plot)
    recipes       GAN recipes (--recipes) at equal generator steps: FID of trained and averaged weights
    quality_cost  the in-training quality measurement's share of training time, per --quality_budgets
    peer_elbo     the conv VAE beside the PyTorch peer at equal steps: test negative ELBO per seed
    peer_gradients  the conv VAE's first step from the peer's start: gradients against float64
    peer_replay   the conv VAE trained on the peer's own run (start, batches, noise): test negative ELBO
    conditional_vae  the conditional conv VAE beside the unconditional one: -log p(x|y) against -log p(x)
    streaming_memory      peak memory of training on prepared shards of --sizes_gb against a small dataset
    streaming_throughput  images/s of --model from prepared Fashion-MNIST shards (--data_dir) against memory
    streaming_input       the share of step time --model waits for input, from shards and memory (profiled)

The training settings are run.py's own flags (keras_gen.cli defines them once: --model,
--dataset, --latent_dim, --batch_size, ...); the flags below are the benchmarks' own. The result
goes to --results_dir as <name>[-<tag>]-<date>.json; `python -m benchmarks.tables` puts it in
BENCHMARKS.md.
"""

import sys
import tempfile
import types

from absl import app
from absl import flags
from absl import logging

from benchmarks import conditional_vae
from benchmarks import layers
from benchmarks import peer_elbo
from benchmarks import peer_gradients
from benchmarks import peer_replay
from benchmarks import precision
from benchmarks import quality
from benchmarks import quality_cost
from benchmarks import recipes
from benchmarks import results
from benchmarks import serving
from benchmarks import streaming
from benchmarks import throughput
from benchmarks import training
from keras_gen import cli
from keras_gen import errors
from keras_gen.models import precision as dtype_policies

BENCHMARKS = {
    "training": training.epochs,
    "likelihoods": training.likelihoods,
    "quality": quality.run,
    "serving": serving.run,
    "layers": layers.run,
    "throughput": throughput.run,
    "precision": precision.run,
    "recipes": recipes.run,
    "quality_cost": quality_cost.run,
    "peer_elbo": peer_elbo.run,
    "peer_gradients": peer_gradients.run,
    "peer_replay": peer_replay.run,
    "conditional_vae": conditional_vae.run,
    "streaming_memory": streaming.memory,
    "streaming_throughput": streaming.speed,
    "streaming_input": streaming.input_wait,
}

flags.DEFINE_enum("channels", "1", ["1", "3"], "throughput: 1 (Fashion-MNIST) or 3 (the CIFAR-10 subset).")
flags.DEFINE_integer("steps", 20, "throughput: timed steps.", lower_bound=1)
flags.DEFINE_integer("warmup", 3, "throughput: untimed steps first (tracing).", lower_bound=1)
flags.DEFINE_integer("rounds", 1, "throughput: alternating measurements.", lower_bound=1)
flags.DEFINE_bool("peer", False, "throughput: run the PyTorch peer after each measurement.")
flags.DEFINE_string(
    "peer_python",
    sys.executable,
    "throughput, peer_elbo, peer_gradients, peer_replay: a Python with torch (see ../shared/peer).",
)
flags.DEFINE_string("peer_script", throughput.PEER_SCRIPT, "throughput and the peer_ benchmarks: the peer's script.")
flags.DEFINE_enum(
    "batch_norm",
    "fused",
    ["fused", "keras"],
    "peer_elbo, peer_replay: train through the fused kernel (networks.normalization, as run.py trains) or "
    "Keras' own batch norm.",
)
flags.DEFINE_list("policies", list(dtype_policies.POLICIES), "precision: dtype policies to compare.")
flags.DEFINE_string("plot", None, "precision: where to draw the curves (PNG).")
flags.DEFINE_list("only", None, "likelihoods: run names of training.LIKELIHOOD_RUNS.")
flags.DEFINE_list("recipes", list(recipes.RECIPES), "recipes: names of recipes.RECIPES, or several joined by +.")
flags.DEFINE_list("quality_budgets", ["0.1", "0"], "quality_cost: a run per --quality_budget (0: no limit).")
flags.DEFINE_list(
    "seeds",
    ["0", "1"],
    "recipes, peer_elbo, peer_replay, conditional_vae: a run per seed (of each recipe); peer_gradients: the first.",
)
flags.DEFINE_list("sizes_gb", ["0.5", "2", "8"], "streaming_memory: sizes of the prepared datasets, in GB.")
flags.DEFINE_string("results_dir", results.DIRECTORY, "Where the result file goes.")
flags.DEFINE_string("tag", None, "A word in the result file's name (default: the model, for throughput).")
FLAGS = flags.FLAGS


def settings_from_flags():
    """Every flag's value as attributes, `present`: the names given on the command line."""
    values = {name: FLAGS[name].value for name in FLAGS}
    values["channels"] = int(values["channels"])
    values["present"] = {name for name in FLAGS if FLAGS[name].present}
    return types.SimpleNamespace(**values)


def main(argv):
    if len(argv) != 2 or argv[1] not in BENCHMARKS:
        cli.fail(f"expected one benchmark name, one of {', '.join(BENCHMARKS)}; got {' '.join(argv[1:]) or 'none'}")
    name = argv[1]
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # As run.py: TensorFlow's INFO lines between the table rows.
    settings = settings_from_flags()
    settings.out_dir = settings.out_dir or tempfile.mkdtemp(prefix=f"bench_{name}_")
    try:
        result = BENCHMARKS[name](settings)
    except errors.UserError as error:  # A flag, path or earlier run that does not fit: one line, as run.py.
        cli.fail(str(error))
    print()
    print(results.render(result))
    tag = settings.tag or (f"{result['summary']['model']}-{settings.channels}ch" if name == "throughput" else None)
    print(f"\nWrote {results.write(result, settings.results_dir, tag)}")


def run(argv=None):
    app.run(main, argv=argv, flags_parser=cli.parse_flags)


if __name__ == "__main__":
    run()
