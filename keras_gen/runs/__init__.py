"""The run directory: what a training run leaves on disk, and how everything else reads it back.

layout.py (every file name in it), config.py (TrainConfig and config.json), checkpoints.py
(tf.train checkpoints that resume exactly), records.py (metrics.csv and metrics.json), reopen.py
(a run's model restored from its newest checkpoint, and its data). Training writes a run through
these; evaluation, studies, export and reports read it through them.
"""
