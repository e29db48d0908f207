"""Every signature of every model type, timed in TF Serving's execution path.

Each model type at the benchmark sizes (32x32 Fashion-MNIST; z 20 for the VAEs, 100 for the
GANs), trained 2 steps and exported; then one request of 1 or 64 images at a time through
keras_gen.serving.session (the MetaGraph in a TF1 session, SignatureDefs by tensor name).
"""

import os
import time

from benchmarks import results
from benchmarks import timing
from keras_gen.runs import train_config
from keras_gen.serving import requests
from keras_gen.serving import saved_model
from keras_gen.serving import server_config
from keras_gen.serving import session
from keras_gen.training import trainer

MODELS = {
    "vae": {"model": "vae", "latent_dim": 20},
    "mlp_vae": {"model": "mlp_vae", "latent_dim": 20},
    "lstm_vae": {"model": "lstm_vae", "latent_dim": 20},
    "gan": {"model": "gan", "latent_dim": 100},
    "wgan": {"model": "wgan", "latent_dim": 100},
    "wgan_gp": {"model": "wgan", "latent_dim": 100, "gradient_penalty_weight": 10.0},
}
# (images per request, timed requests)
BATCHES = ((1, 200), (64, 50))


def _directory_megabytes(path):
    sizes = [os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names]
    return sum(sizes) / 1e6


def run(settings):
    """Per model type: export seconds, SavedModel size, every signature's p50/p99 at batch 1 and 64."""
    records = []
    for name, model_settings in MODELS.items():
        run_dir = os.path.join(settings.out_dir, name)
        trainer.train(
            train_config.TrainConfig(
                out_dir=run_dir, dataset="fashion_mnist", data_dir=settings.data_dir, image_size=32, batch_size=64,
                epochs=1, steps_per_epoch=2, verbose=0, **model_settings,
            )
        )  # fmt: skip
        started = time.perf_counter()
        version = saved_model.export_run(run_dir, os.path.join(settings.out_dir, "exports", name), verbose=0)
        seconds = time.perf_counter() - started
        with session.ServingSession(version) as served:
            for signature, inputs in requests.read_warmup(os.path.join(version, requests.WARMUP_FILE)):
                record = {"model": name, "signature": signature, "export_seconds": round(seconds, 1),
                          "saved_model_mb": round(_directory_megabytes(version), 1)}  # fmt: skip
                for rows, repeats in BATCHES:
                    batch = server_config.tile_rows(inputs, rows)
                    p50, p99 = timing.percentile_milliseconds(lambda: served.run(signature, batch), repeats)
                    record[f"batch{rows}_ms_p50"], record[f"batch{rows}_ms_p99"] = round(p50, 2), round(p99, 2)
                if signature == "sample":
                    record["sample_images_per_second"] = round(64 / record["batch64_ms_p50"] * 1000)
                print(record, flush=True)
                records.append(record)
    columns = ["model", "export s", "MB", "signature", "batch 1 p50 / p99 ms", "batch 64 p50 / p99 ms",
               "sample images/s"]  # fmt: skip
    rows = [
        [r["model"], r["export_seconds"], r["saved_model_mb"], r["signature"],
         f"{r['batch1_ms_p50']} / {r['batch1_ms_p99']}", f"{r['batch64_ms_p50']} / {r['batch64_ms_p99']}",
         r.get("sample_images_per_second", "")]
        for r in records
    ]  # fmt: skip
    return results.make("serving", columns, rows, records, title="serving latency by signature")
