"""Benchmarks of keras_gen, beside the package (not installed with it): `python -m benchmarks NAME`.

Each benchmark measures through the code a user runs, prints its table, and writes its result as a
JSON file in benchmarks/results/ (command, date, CPU, library versions, every measurement);
`python -m benchmarks.tables` regenerates BENCHMARKS.md's tables from those files.
"""

# Before anything imports TensorFlow: keras_gen turns oneDNN on as TensorFlow loads (on AMD CPUs it
# is off otherwise, and every measurement would be of the slower TensorFlow).
import keras_gen  # noqa: E402, F401
