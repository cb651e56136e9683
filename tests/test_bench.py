import pytest

from cnn_lab import runs
from tests.bench import processes
from tests.bench.pages import bench_conv_update


def test_the_bench_updates_this_machine_s_table_and_logs_its_whole_run(tmp_path, monkeypatch):
    """A run's rows replace the figure, date and command of their benchmark in its machine's table, keeping the
    target people wrote; a new benchmark joins that table; other machines' tables stay; the log gets the run."""
    from tests.bench import __main__ as bench
    from tests.bench import tables

    rows = bench_conv_update(None, quick=True)
    assert rows[0][0].startswith("Convolution page update") and rows[0][1].endswith("ms median")
    current = tmp_path / "BENCHMARKS.md"
    current.write_text("# Benchmarks\n\nA summary that stays on top.\n\n## A 2-core CPU with AMX\n\n"
                       f"{tables.COLUMNS}\n{tables.RULE}\n| old | at most 1 s | 2 s | 2026-12-01 | `x` |\n"
                       "| kept | - | 5 s | 2026-12-01 | `y` |\n\n## One GPU: NVIDIA H200\n\n"
                       f"{tables.COLUMNS}\n{tables.RULE}\n| old | at most 1 s | 9 s | 2026-12-01 | `x` |\n")
    log = tmp_path / "log.md"
    log.write_text(tables.LOG_INTRO + "### older run\n")
    monkeypatch.setattr(tables, "machine_table", lambda: ("## A 2-core CPU with AMX", "Intel Xeon"))
    monkeypatch.setattr(bench.datasets, "load_dataset", lambda name: None)
    monkeypatch.setitem(bench.BENCHMARKS, "two", lambda cifar, quick: [("old", "0.5 s", "faster"), ("new", "3 s", "")])
    done = bench.run(["two"])
    bench.write(done, current, log)
    lines = current.read_text().splitlines()
    today = done.date[:10]
    assert f"| old | at most 1 s | 0.5 s | {today} · Intel Xeon | `python -m tests.bench --only two` |" in lines
    assert "| kept | - | 5 s | 2026-12-01 | `y` |" in lines
    assert lines[-1] == "| old | at most 1 s | 9 s | 2026-12-01 | `x` |"  # the GPU's table
    new = f"| new | - | 3 s | {today} · Intel Xeon | `python -m tests.bench --only two` |"
    assert lines.index("| kept | - | 5 s | 2026-12-01 | `y` |") < lines.index(new)
    assert log.read_text().index("| old | 0.5 s | - | faster |") < log.read_text().index("### older run")


def test_a_machine_with_no_table_yet_gets_one_above_the_test_suite_s():
    from tests.bench import tables
    from tests.bench.common import Row

    text = tables.update("# B\n\n## The test suite\n", "## One GPU: NVIDIA H100",
                         [(Row("a", "1 s", ""), "c"), (Row("b", "2 s", "", target="at most 3 s"), "c")], "2026-12-08")
    assert text.split("\n")[2:9] == ["## One GPU: NVIDIA H100", "", tables.COLUMNS, tables.RULE,
                                     "| a | - | 1 s | 2026-12-08 | `c` |", "| b | at most 3 s | 2 s | 2026-12-08 | `c` |",
                                     ""]
    assert text.endswith("## The test suite\n")


def test_the_browser_bench_finds_the_new_finished_run_only(tmp_path, monkeypatch):
    """The page run's poll reads only the run folders that are new, and waits for the one that finished."""
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    old = runs.create_run("20260101-000000-000001", "train", "{}")
    runs.finish_run(old, "finished")
    before = processes.run_ids()
    assert before == {old} and processes.new_run(before) is None
    (runs.runs_root() / "20260101-000000-000002").mkdir()  # a run being created: no status.json yet
    new = runs.create_run("20260101-000000-000003", "train", "{}")
    assert processes.new_run(before) is None  # still running
    runs.finish_run(new, "finished")
    assert processes.new_run(before) == new


def test_a_cli_run_that_fails_says_how_it_ended_and_what_it_printed_last(tmp_path, monkeypatch):
    """Once in many runs the CLI's process ended with SIGABRT after its run was saved (2 Dec): the bench's error
    now carries the exit code, the run and the end of its output instead of only the exit code."""
    import subprocess

    import pytest

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    runs.runs_root().mkdir(parents=True, exist_ok=True)

    def aborted(command, **kwargs):
        run_id = runs.create_run("20260101-000000-000004", "train", "{}")
        runs.finish_run(run_id, "finished")
        return subprocess.CompletedProcess(command, -6, "", "epoch 2/2: 100%\nterminate called without an active "
                                           "exception\n")

    monkeypatch.setattr(subprocess, "run", aborted)
    with pytest.raises(RuntimeError) as error:
        processes.cli_run("CPU: 70% in a minute")
    assert "exited with -6 (its run: 20260101-000000-000004)" in str(error.value)
    assert str(error.value).endswith("terminate called without an active exception\n")


def test_the_browser_bench_runs_five_pairs_in_turns_and_compares_the_medians(monkeypatch):
    """The CLI goes first in pairs 1, 3 and 5 and the page in 2 and 4; one slow page run moves the medians little."""
    order = []
    speeds = {"cli": iter([1900, 1800, 2000, 1850, 1950]), "page": iter([1800, 1400, 1750, 1850, 1700])}

    def side(kind):
        def run(name):
            assert name == "CPU: 70% in a minute"
            order.append(kind)
            return kind
        return run

    monkeypatch.setattr(processes, "cli_run", side("cli"))
    monkeypatch.setattr(processes, "page_run", side("page"))
    monkeypatch.setattr(processes, "epoch_images_per_s", lambda kind: next(speeds[kind]))
    [(_, figure, detail, utilisation, _)] = processes.bench_browser(None, quick=False)
    assert order == ["cli", "page", "page", "cli", "cli", "page", "page", "cli", "cli", "page"]
    assert figure == "92% of the CLI"  # medians 1,750 and 1,900
    assert "page 1,800, 1,400, 1,750, 1,850, 1,700 img/s; CLI 1,900, 1,800, 2,000, 1,850, 1,950 img/s" in detail
    assert utilisation.startswith("46 GFLOP/s")  # 26.4 MFLOP a training image at the page's median 1,750 img/s


def test_the_flop_count_covers_the_backward_pass_and_leaves_a_frozen_stem_out():
    """Training costs about three forward passes (the backward computes the gradients of the weights and of each
    layer's input, but not of the images); a frozen whitened stem adds its forward only."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cnn_lab.models import build_model
    from cnn_lab.presets import preset
    from tests.bench.utilisation import CLASSES, SHAPE, training_flops_per_image

    for name in ("Course: CNN", "CPU: 70% in a minute"):
        config = preset(name)
        with FlopCounterMode(display=False) as forward, torch.no_grad():
            build_model(config.model, SHAPE, CLASSES)(torch.randn(config.batch_size, *SHAPE))
        ratio = training_flops_per_image(config) * config.batch_size / forward.get_total_flops()
        assert 2.2 < ratio < 3.0, (name, ratio)
    unfrozen = preset("CPU: 70% in a minute")
    unfrozen.whiten = False
    assert training_flops_per_image(unfrozen) > training_flops_per_image(preset("CPU: 70% in a minute"))


def test_the_flop_count_follows_progressive_resizing_epoch_by_epoch():
    """Epochs on 24x24 windows cost about (23/31)^2 of a whole image's (the stem's 2x2 conv makes 31 of 32): the
    count per training image is the mean over the epochs, so that times the run's images/s is its FLOP/s."""
    from dataclasses import replace

    from cnn_lab.presets import preset
    from tests.bench.utilisation import training_flops_per_image

    whole = replace(preset("CPU: 70% in a minute"), epochs=4, small_epochs=0)
    small = replace(whole, small_epochs=4, small_size=24)
    ratio = training_flops_per_image(small) / training_flops_per_image(whole)
    assert 0.5 < ratio < 0.6, ratio
    mixed = training_flops_per_image(replace(whole, small_epochs=1, small_size=24))
    assert mixed == pytest.approx((training_flops_per_image(small) + 3 * training_flops_per_image(whole)) / 4)


def test_a_run_s_flops_are_counted_as_its_convolutions_cost_and_every_row_has_a_utilisation_cell():
    """The transfer rows count a whole run's FLOPs as it runs: a convolution, grouped ones included, costs 2 x its
    outputs x its weights per output in each of its passes; a row built as a plain (what, figure, note) tuple has an
    empty utilisation cell."""
    import torch

    from tests.bench.common import Row
    from tests.bench.utilisation import cell, flops_counted

    conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    with flops_counted() as flops:
        conv(torch.randn(4, 8, 20, 20)).sum().backward()
    assert flops() == 2 * 2 * (4 * 16 * 20 * 20) * (8 * 3 * 3)  # forward, and the weights' gradient (not the data's)
    # a depthwise convolution (EfficientNet's), whose input needs its gradient too: 3 x its forward's 2 x 16,000
    # outputs x 9 weights each (torch's own formula counts its weights' gradient as a dense convolution's: 16 x more)
    depthwise, x = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.randn(4, 16, 20, 20, requires_grad=True)
    with flops_counted() as flops:
        depthwise(x).sum().backward()
    assert flops() == 3 * 2 * (4 * 16 * 20 * 20) * 9
    assert Row(*("what", "figure", "note")).utilisation == ""
    assert cell(50e9, 200e9, 100e9) == "50 GFLOP/s: 50% of the matmul peak, 25% of its fastest conv's 200"
    assert cell(140e12, 520e12, 787e12) == "140 TFLOP/s: 18% of the matmul peak, 27% of its fastest conv's 520"
    assert cell(208e9, 46e12, 787e12) == "208 GFLOP/s: under 1% of the matmul peak, under 1% of its fastest conv's 46,000"


def test_the_second_dataset_of_the_defaults_bench_is_cifar10_laid_out_as_an_upload(cifar10_archive, lab_cache,
                                                                                    tmp_path):
    from cnn_lab import data
    from tests.bench.defaults import PER_CLASS, cifar_folder

    root = cifar_folder(tmp_path / "cifar")
    loaded = data.load_folder(root, size=32, upload=True)
    assert {split: len(s.labels) for split, s in loaded.splits.items()} == {s: 10 * n for s, n in PER_CLASS.items()}
    # no validation photo is a training photo (it was: the validation split scored 100%)
    names = {split: {f"{p.parent.name}/{p.name}" for p in (root / split).glob("*/*")} for split in ("train", "val")}
    assert len(names["val"]) == 10 * PER_CLASS["val"] and not names["val"] & names["train"]
    assert len(loaded.classes) == 10


def test_the_variants_rule_keeps_a_change_only_when_it_wins_on_both_datasets_by_more_than_a_photo():
    from tests.bench.defaults import kept, words

    recipe, photos = words({}), {"boats9": 100, "CIFAR-10": 500}  # one photo: 1 point, and 0.2 point
    assert kept({recipe: {"boats9": 0.90, "CIFAR-10": 0.70},
                 "epochs=6": {"boats9": 0.90, "CIFAR-10": 0.75},  # a tie on boats9
                 "epochs=2": {"boats9": 0.92, "CIFAR-10": 0.701}}, photos) == recipe  # half a photo on CIFAR-10
    assert kept({recipe: {"boats9": 0.90, "CIFAR-10": 0.70},
                 "epochs=6": {"boats9": 0.92, "CIFAR-10": 0.71},
                 "frozen_views=2": {"boats9": 0.95, "CIFAR-10": 0.701},  # the best mean; half a photo on CIFAR-10
                 "epochs=2": {"boats9": 0.915, "CIFAR-10": 0.706}}, photos) == "epochs=6"


def test_the_variants_bench_runs_each_change_on_both_datasets_over_three_seeds_and_names_the_one_kept(monkeypatch):
    from tests.bench import defaults

    seen = []

    def fake_run(config, fresh=True):  # 6 epochs wins on both; on boats9 in seed 2 only (two photos on the mean)
        seen.append((config.data, config.epochs, config.frozen_views, config.seed, fresh))
        better = config.epochs == 6 and config.mode == "partial" and (config.data == "cifar" or config.seed == 2)
        return defaults.Measured(validation=0.96 if better else 0.9, test=0.9, seconds=1.0)

    monkeypatch.setattr(defaults, "one_run", fake_run)
    monkeypatch.setattr(defaults, "validation_photos", {"boats9": 100, "cifar": 500}.__getitem__)
    rows = defaults.variant_rows({"boats9": "boats9", "CIFAR-10": "cifar"}, quick=False)
    first = next(rows)
    assert len(seen) == 6  # each row as soon as it is measured: the probe's 3 seeds on both datasets, no more yet
    rows = [first, *rows]
    cpu = [row for row in rows if row.what.startswith(f'"{defaults.transfer.CPU_RECIPE}"')]
    assert [row.what.split(", ", 1)[1].split(":")[0] for row in cpu[:-1]] == [
        "the recipe as it is", "epochs=6", "frozen_views=2"]
    assert cpu[1].figure == "92.0% and 96.0% (mean 94.00%)" and cpu[-1].figure == "epochs=6"
    assert cpu[1].note.startswith("boats9: validation 90.0%, 90.0%, 96.0%, test 90.0% in 1 s")
    assert rows[3].what.endswith("the rule keeps") and rows[3].figure == "the recipe as it is"  # the probe: all tie
    assert {seed for *_, seed, _ in seen} == {0, 1, 2} and ("cifar", 6, 4, 1, True) in seen
    assert all(not fresh for _, _, views, _, fresh in seen if views == 0)  # the probe's features: not extracted again


def test_a_benchmark_that_fails_is_a_row_and_the_run_goes_on(monkeypatch):
    """A long run (a lent GPU's minutes) keeps the rows of the benchmarks before and after one that fails, and the
    failing one's rows so far, with a row that names the error."""
    from tests.bench import __main__ as bench

    def breaks(cifar, quick):
        yield ("first row", "1 s", "kept")
        raise RuntimeError("CUDA error: out of memory\nmore detail")

    monkeypatch.setattr(bench.datasets, "load_dataset", lambda name: None)
    monkeypatch.setitem(bench.BENCHMARKS, "breaks", breaks)
    monkeypatch.setitem(bench.BENCHMARKS, "works", lambda cifar, quick: [("after", "2 s", "ran")])
    table = bench.run(["breaks", "works"]).section
    assert "| first row | 1 s | - | kept |" in table
    assert "| breaks: failed | RuntimeError | - | CUDA error: out of memory |" in table
    assert table.rstrip().endswith("| after | 2 s | - | ran |")


def test_airbench_s_own_table_is_read_for_its_time_and_its_training_seconds():
    """The runner's summary gives the accuracy and time; the table that airbench94's own functions print gives its
    training's seconds (the time after the last epoch), the warm-up run left out."""
    import contextlib
    import io

    import pytest

    from tests.bench.baseline import airbench_folder, load_airbench, parse_runner

    folder = airbench_folder()
    if folder is None:
        pytest.skip("no ../shared/baselines/airbench beside the datasets folder")
    airbench94, printed = load_airbench(folder), io.StringIO()
    with contextlib.redirect_stdout(printed):
        airbench94.print_columns(airbench94.logging_columns_list, is_head=True)
        for run, last_epoch_time in ((0, 9.0), (1, 2.0), (2, 2.5)):  # the warm-up run, then two timed runs
            for epoch, total_time_seconds in ((1, 0.4), (10, last_epoch_time)):
                train_loss, train_acc, val_acc = 0.5, 0.9, 0.88
                airbench94.print_training_details(locals(), is_final_entry=False)
                run = None  # as airbench prints it: the run's number on its first row only
            epoch, tta_val_acc, total_time_seconds = "eval", 0.9, last_epoch_time + 0.2
            airbench94.print_training_details(locals(), is_final_entry=True)
        print("airbench94 mean acc 0.9074 (std 0.0012) mean time 2.450 s over 2 runs on NVIDIA H200")
    runs = parse_runner(printed.getvalue())
    assert (runs.accuracy, runs.std, runs.seconds, runs.runs) == (0.9074, 0.0012, 2.45, 2)
    assert runs.training_seconds == 2.25  # the mean of 2.0 and 2.5
    assert parse_runner("Traceback (most recent call last):\n...") is None
