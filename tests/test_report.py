"""--mode=report: a report built from real (tiny) runs holds their numbers, figures and commands."""

import csv
import os
import re

import pytest

from conftest import tiny_train_config, write_npz
from keras_gen import divergences
from keras_gen import io_utils
from keras_gen import report
from keras_gen.runs import reopen
from keras_gen import studies
from keras_gen.evaluation import evaluate
from keras_gen.runs import train_config
from keras_gen.training import trainer


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """A VAE (evaluated, one study), a GAN trained for 3 epochs, and a divergence study."""
    root = tmp_path_factory.mktemp("report_runs")
    data_path = write_npz(str(root), (100, 16, 16, 1))
    vae_dir, gan_dir, lines_dir = str(root / "vae_tiny"), str(root / "gan_tiny"), str(root / "lines")
    trainer.train(tiny_train_config(data_path, vae_dir, epochs=2))
    evaluate.evaluate_run(vae_dir, num_samples=8, iw_samples=3, metrics=["likelihood"])
    studies.run_study(reopen.load_run(vae_dir), "interpolate")
    trainer.train(tiny_train_config(data_path, gan_dir, model="gan", epochs=5, steps_per_epoch=1, latent_dim=3))
    os.makedirs(lines_dir)
    divergences.parallel_lines_study(lines_dir, thetas=[0.0, 0.5], steps=3)
    return vae_dir, gan_dir, lines_dir


def _table_rows(text, first_header_cell):
    """Rows (lists of cells) of the Markdown table whose header starts with `first_header_cell`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header_cell} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_report_of_two_runs_and_a_study_holds_their_numbers_figures_and_links(tmp_path, finished_runs):
    vae_dir, gan_dir, lines_dir = finished_runs
    verdicts = tmp_path / "verdicts.md"
    verdicts.write_text("The tiny VAE is **not reproduced**: 2 epochs of 3 steps.\n")
    path = report.build_report([vae_dir, gan_dir, lines_dir], str(tmp_path / "out" / "REPORT.md"), str(verdicts))
    text = open(path, encoding="utf-8").read()

    runs_table = _table_rows(text, "run")
    assert [row[1] for row in runs_table] == ["vae", "gan"]
    assert [row[5] for row in runs_table] == ["2", "5"]  # epochs, from metrics.csv
    assert runs_table[0][0] == "[vae_tiny](#vae_tiny)"

    # The likelihood table carries metrics.json's numbers, not approximations typed elsewhere.
    likelihood = io_utils.read_json(os.path.join(vae_dir, "metrics.json"))["likelihood"]
    [vae_row] = _table_rows(text, "run | dataset | test images")
    assert vae_row[0] == "[vae_tiny](#vae_tiny)" and vae_row[2] == "8"
    assert vae_row[3].startswith(f"{likelihood['neg_elbo']:,.1f} ± ")
    assert vae_row[4].startswith(f"{likelihood['iwae_nll']:,.1f} ± ")

    # The divergence study: its thetas with the critic's estimates and the closed forms.
    results = io_utils.read_json(os.path.join(lines_dir, "divergence.json"))
    divergence_rows = _table_rows(text, "θ")
    assert [row[0] for row in divergence_rows] == ["0", "0.5"]
    assert divergence_rows[1][2] == report._format(results["squared_hellinger_closed_form"][1], 3)

    # Every figure link resolves to a file beside the report, and every anchor to a heading.
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert any(link.endswith("vae_tiny/training_curves.png") for link in figures)
    assert any(link.endswith("vae_tiny/explore_interpolate.png") for link in figures)
    assert any(link.endswith("lines/divergence.png") for link in figures)
    for link in figures:
        assert not os.path.isabs(link) and os.path.isfile(os.path.join(tmp_path, "out", link)), link
    headings = {report.anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in headings, target

    # The GAN's 5 sample grids are shown at 4 epochs: the first, the last and two between.
    gan_grids = [link for link in figures if "/gan_tiny/epoch_" in link]
    assert [os.path.basename(link) for link in gan_grids] == [f"epoch_000{epoch}.png" for epoch in (1, 2, 4, 5)]

    # The commands reproduce the runs' settings; the hand-written verdicts are marked as such.
    (command,) = [line for line in text.splitlines() if line.startswith("python run.py") and "--model=gan" in line]
    assert "--latent_dim=3 " in command + " "
    assert "--resume" not in text
    verdicts_at = text.index("## Verdicts")
    assert "*Written by hand" in text[verdicts_at:] and "**not reproduced**" in text[verdicts_at:]
    assert text.index("**not reproduced**") > verdicts_at


def test_reproduction_command_parses_back_to_the_same_config(tmp_path, finished_runs):
    from keras_gen import cli

    _, gan_dir, _ = finished_runs
    saved = io_utils.read_json(os.path.join(gan_dir, "config.json"))["config"]
    command = report.reproduction_command(saved).split()
    assert command[:2] == ["python", "run.py"]
    cli.FLAGS.unparse_flags()
    cli.parse_flags(["run.py", *command[2:]])
    config, _ = cli.train_config_from_flags()
    cli.FLAGS.unparse_flags()
    expected = train_config.TrainConfig.from_saved(saved)
    assert {key: value for key, value in vars(config).items() if key not in ("resume", "verbose")} == {
        key: value for key, value in vars(expected).items() if key not in ("resume", "verbose")
    }


def test_runs_alike_but_for_image_and_latent_size_are_set_side_by_side_as_a_grid(tmp_path, finished_runs):
    # Three GANs alike but for (image size, z): a grid with one empty cell. The GAN of the fixture
    # (z 3, 5 epochs) differs only in its budget, so it is a cell too; a GAN with another loss is not.
    data_path = write_npz(str(tmp_path), (40, 16, 16, 1))
    cells = {(16, 2): "gan_16_2", (32, 3): "gan_32_3"}
    for (size, latent_dim), name in cells.items():
        trainer.train(
            tiny_train_config(
                data_path,
                tmp_path / name,
                model="gan",
                image_size=size,
                latent_dim=latent_dim,
                epochs=2,
                steps_per_epoch=1,
            )
        )
    trainer.train(
        tiny_train_config(
            data_path, tmp_path / "other_loss", model="gan", gan_loss="least_squares", epochs=1, steps_per_epoch=1
        )
    )
    directories = [str(tmp_path / name) for name in cells.values()] + [finished_runs[1], str(tmp_path / "other_loss")]
    text = open(report.build_report(directories, str(tmp_path / "R.md")), encoding="utf-8").read()

    grids = text[text.index("## Grids") : text.index("## Each run")]
    assert grids.count("\n### ") == 1 and "### gan on custom\n" in grids
    # A second cell with the other loss makes a second grid of GANs on the same data: each title says how they differ.
    trainer.train(
        tiny_train_config(
            data_path, tmp_path / "other_loss_z3", model="gan", gan_loss="least_squares", latent_dim=3, epochs=1,
            steps_per_epoch=1,
        )
    )  # fmt: skip
    text = open(report.build_report([*directories, str(tmp_path / "other_loss_z3")], str(tmp_path / "R2.md"))).read()
    titles = [line for line in text[text.index("## Grids") : text.index("## Each run")].splitlines() if "### " in line]
    assert titles == ["### gan on custom, gan_loss=non_saturating", "### gan on custom, gan_loss=least_squares"]
    rows = _table_rows(grids, "image size")
    assert [row[0] for row in rows] == ["16×16", "32×32"]
    header = next(line for line in grids.splitlines() if line.startswith("| image size |"))
    assert header == "| image size | z 2 | z 3 |"
    for (size, latent_dim), name in {**cells, (16, 3): "gan_tiny"}.items():
        directory = str(tmp_path / name) if name in cells.values() else finished_runs[1]
        last = list(csv.DictReader(open(os.path.join(directory, "metrics.csv"))))[-1]
        cell = rows[[16, 32].index(size)][1 + [2, 3].index(latent_dim)]
        expected = f"{report._format(float(last['critic_loss']))} / {report._format(float(last['val_critic_loss']))}"
        assert cell == f"[{expected}](#{name})", cell
    assert rows[1][1] == "—"  # 32×32 with z 2 was not run.
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", grids)
    assert [os.path.basename(link) for link in figures] == ["curves.png", "last_samples.png"]
    for link in figures:
        assert os.path.isfile(os.path.join(tmp_path, link)), link


def test_report_of_a_directory_that_is_not_a_run_is_one_line(tmp_path, main_in_process, finished_runs):
    (tmp_path / "empty").mkdir()
    status, lines = main_in_process(
        "--mode=report", f"--runs={finished_runs[0]},{tmp_path / 'empty'}", f"--report_file={tmp_path / 'r.md'}"
    )
    assert status == 2 and len(lines) == 1, lines
    assert f"{tmp_path / 'empty'} holds neither config.json" in lines[0]
    assert not (tmp_path / "r.md").exists()


@pytest.mark.parametrize("budget", ["cpu", "full"])
def test_every_reproduction_step_is_a_valid_command_from_an_existing_preset(monkeypatch, budget):
    from keras_gen import cli
    from keras_gen import reproduce

    repository = os.path.join(os.path.dirname(__file__), "..")
    monkeypatch.chdir(repository)  # Presets are named relative to the checkout, as a user runs them.
    for name, experiment in reproduce.EXPERIMENTS.items():
        for step in (step for step in experiment.steps if budget in step.budgets):
            args = reproduce.command(step, os.path.join("runs", "reproduce", name, step.run), budget)
            if step.mode == "train":
                assert os.path.isfile(args[2].split("=", 1)[1]), args  # --flagfile=flags/<preset>.cfg
                assert "--noexport" in args
            if step.mode in ("eval", "explore"):  # The findings are of the final weights, as published.
                assert "--checkpoint=newest" in args
            cli.FLAGS.unparse_flags()
            try:
                cli.parse_flags(["run.py", *args])  # An unknown flag or bad value exits with status 2.
                assert cli.FLAGS.mode == step.mode
            finally:
                cli.FLAGS.unparse_flags()


def test_reproduce_needs_an_experiment(main_in_process):
    status, lines = main_in_process("--mode=reproduce")
    assert status == 2 and len(lines) == 1 and "--mode=reproduce needs --experiment" in lines[0], lines


def test_reproduction_steps_start_as_quietly_as_a_user_typed_them():
    # The parent sets TF_CPP_MIN_LOG_LEVEL for itself; passed on, the child would take it for the user's
    # own setting and print TensorFlow's start-up lines.
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    code = (
        "import os, keras_gen.reproduce as r; "
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], 'TF_CPP_MIN_LOG_LEVEL' in r._child_environment())"
    )
    printed = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    assert printed.stdout.split() == ["1", "False"]


def test_reproduce_runs_each_step_as_a_command_and_ends_in_its_report(tmp_path, monkeypatch, main_in_process):
    from keras_gen import reproduce

    tiny = reproduce.Experiment(
        "000_e4f9fb568d21cdc1.txt",
        "the two estimates follow their closed forms",
        (reproduce.Step("divergence", "lines", ("--thetas=0,0.5", "--divergence_steps=3")),),
    )
    monkeypatch.setitem(reproduce.EXPERIMENTS, "divergences", tiny)
    monkeypatch.chdir(os.path.join(os.path.dirname(__file__), ".."))  # Presets are found from the checkout.
    status, lines = main_in_process("--mode=reproduce", "--experiment=divergences", f"--out_dir={tmp_path}")
    assert status == 0, lines
    assert io_utils.read_json(str(tmp_path / "lines" / "divergence.json"))["theta"] == [0.0, 0.5]
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# Reproduction: divergences (000_e4f9fb568d21cdc1.txt)")
    assert "The original reports: the two estimates follow their closed forms." in text
    assert [row[0] for row in _table_rows(text, "θ")] == ["0", "0.5"]
    assert f"[divergences] python run.py --mode=divergence --out_dir={tmp_path / 'lines'}" in main_in_process.stdout


@pytest.mark.parametrize("budget", ["cpu", "full"])
def test_the_report_grid_runs_every_cell_at_either_budget(budget):
    from keras_gen import reproduce

    steps = [step for step in reproduce.EXPERIMENTS["report_grid"].steps if budget in step.budgets]
    cells = {f"{model}_x{size}_z{z}" for model in ("vae", "gan", "wgan") for size in (16, 32, 64) for z in (2, 20, 100)}
    # The collapsing GAN cells a second time with today's recipe (non-saturating loss, EMA): a second line.
    recipe = {"gan_x32_z100_recipe", "gan_x64_z20_recipe", "gan_x64_z100_recipe", "gan_x64_z100_k3_recipe"}
    assert {step.run for step in steps} == cells | {"gan_x64_z100_k3"} | recipe
    for step in steps:
        assert (step.run in recipe) == ("--ema_decay=0.99" in step.args and "--gan_loss=non_saturating" in step.args)
    for step in steps:
        command = reproduce.command(step, os.path.join("runs", step.run), budget)
        assert (f"--flagfile={os.path.join('flags', step.args[0] + '.cfg')}" in command) and (
            ("--epochs=" in " ".join(command)) == (budget == "cpu")  # The full budget is the preset's own.
        ), command
