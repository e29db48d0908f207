"""Model registry: `--model` offers exactly the names registered here.

Each builder takes the image shape and the model's hyperparameters as keyword arguments, under the
names the model classes use; `build` refuses a hyperparameter the model does not take.
"""

import inspect
import math

import keras

from keras_gen import errors
from keras_gen import registry
from keras_gen.models import gan
from keras_gen.models import vae
from keras_gen.models import wgan

MODELS = registry.Registry("model")
MODELS.register("vae", vae.build_conv)
MODELS.register("mlp_vae", vae.build_mlp)
MODELS.register("lstm_vae", vae.build_lstm)
MODELS.register("gan", gan.build)
MODELS.register("wgan", wgan.build)


def hyperparameters(name):
    """The names of the hyperparameters model `name` takes (its builder's keyword arguments)."""
    parameters = inspect.signature(MODELS.lookup(name)).parameters.values()
    names = {parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}
    names.discard("image_shape")
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        names.update(vae.OBJECTIVE)  # The VAE builders take the objective's settings through **objective.
    return names


def build(name, image_shape, **hyperparameters_given):
    """Builds model `name` for images of `image_shape` (height, width, channels).

    A hyperparameter set to None takes the model's default; one the model does not take is a
    one-line error listing those it does.
    """
    accepted = hyperparameters(name)
    unknown = sorted(set(hyperparameters_given) - accepted)
    if unknown:
        raise errors.UserError(
            f"the {name} model takes no hyperparameter {', '.join(unknown)}; it takes: {', '.join(sorted(accepted))}"
        )
    settings = {key: value for key, value in hyperparameters_given.items() if value is not None}
    return MODELS.lookup(name)(image_shape, **settings)


def parameter_count(name, image_shape, **hyperparameters_given):
    """Weights `build` would create, counted without allocating them (a model too big for memory is
    refused before it exhausts the machine, not after)."""
    with keras.StatelessScope(initialize_variables=False):
        model = build(name, image_shape, **hyperparameters_given)
    _forget_uninitialized_variables()
    return sum(math.prod(weight.shape) for weight in model.weights)


def _forget_uninitialized_variables():
    """Keras keeps the variables a StatelessScope deferred, to initialize at the next scope's exit:
    these must never be (they would allocate the model that was too big). Keras' private global state
    (tests/test_keras_internals.py checks it is still there)."""
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("uninitialized_variables", [])
