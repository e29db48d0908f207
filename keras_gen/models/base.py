"""What every keras_gen model offers the trainer, the callbacks and the studies."""

import keras


class GenerativeModel(keras.Model):
    """A Keras model with a latent prior N(0, I) that can turn latents into viewable images.

    Subclasses set `value_range` ("unit" or "symmetric": the pixel range they train on), override
    `train_step`/`test_step`, `decode_to_images` and `default_optimizers`.

    Args:
        latent_dim: dimension of z.
        seed: seed of the model's own noise (reparameterisation, latents). Its state is checkpointed
            (training.checkpointing), so a resumed run draws the same noise.
    """

    value_range = "unit"
    # Constructor arguments that are Keras models; get_config/from_config (de)serialize them.
    networks = ()
    # Real batches one train_step consumes, stacked on a leading axis; None: one unstacked batch.
    batches_per_step = None
    default_learning_rate = 1e-3

    def __init__(self, latent_dim, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.seed = seed
        self.noise = keras.random.SeedGenerator(seed, name="noise")

    def pixel_noise(self, dataset_binarizes):
        """How 8-bit pixels become inputs (one of data.pipeline.PIXEL_NOISES)."""
        return "binarize" if dataset_binarizes else None

    def default_optimizers(self, learning_rate):
        """{compile() argument name: optimizer} for a fresh run."""
        raise NotImplementedError

    def optimizers(self):
        """{name: optimizer} as compiled; what the checkpoint stores beside the weights."""
        raise NotImplementedError

    def build_optimizers(self):
        """Creates every optimizer's slot variables, so a checkpoint can restore them before training."""
        raise NotImplementedError

    def decode_to_images(self, latents):
        """Images in [0, 1], (batch, size, size, channels), for latents (batch, latent_dim)."""
        raise NotImplementedError

    @staticmethod
    def images_of(data):
        """The images of a batch, whether it comes as images, (images, labels) or train_on_batch's tuple."""
        return keras.utils.unpack_x_y_sample_weight(data)[0]

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "seed": self.seed})
        config.update({name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self.networks})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.networks:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
