"""Export to TF Serving: signatures.py (what is served), saved_model.py (versions, model card),
requests.py (REST bodies and the warm-up file), loading.py (`keras_gen.load`)."""
