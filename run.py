"""Train, evaluate, explore or export a generative model: `python run.py --model=vae --dataset=mnist`.

Flags are defined in keras_gen/cli.py; presets live in flags/ (`--flagfile=flags/<preset>.cfg`).
"""

from keras_gen import cli

if __name__ == "__main__":
    cli.run()
