"""Serving with TF Serving: signatures.py (what is served), saved_model.py (versions, model card),
requests.py (REST bodies and the warm-up file), session.py (a version run as TF Serving runs it),
server_config.py (models.config, batching parameters), client.py (a gRPC client), loading.py
(`keras_gen.load`)."""
