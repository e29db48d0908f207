"""`python -m keras_gen ...` is `python run.py ...` (what --mode=reproduce runs for every step)."""

from keras_gen import cli

if __name__ == "__main__":
    cli.run()
