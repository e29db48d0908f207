"""Sub-networks shared by the models: encoders, decoders, generators, critics."""
