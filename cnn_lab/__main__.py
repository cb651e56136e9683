"""Command line: `python -m cnn_lab {train,transfer,runs,export,import} ...`, the same core and jobs as the pages,
headless: progress on stderr, the JSON result as stdout's last line, and every error the pages show as a
sentence on stderr with exit code 2."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from cnn_lab import overrides


class CliError(Exception):
    """What went wrong, in one sentence: printed on stderr, exit code 2."""


def expected_errors() -> tuple[type[Exception], ...]:
    """The errors that are one sentence for the user. The job manager's list is imported only when an error comes,
    so that `runs` does not wait for torch."""
    from cnn_lab.jobs import EXPECTED_ERRORS

    return CliError, overrides.OverrideError, *EXPECTED_ERRORS


def cmd_train(args: argparse.Namespace) -> int:
    from cnn_lab.presets import PRESETS, preset
    from cnn_lab.train import TrainConfig

    if args.resume:
        config = None  # the run's own
    elif args.config:
        try:
            config = TrainConfig.from_json(_read(args.config))
        except (TypeError, ValueError) as error:
            raise CliError(f"{args.config} is not a training config (as the train page downloads it): {error}.")
    elif args.preset and args.preset not in PRESETS:
        raise CliError(f"No preset {args.preset!r}; the presets are: {', '.join(PRESETS)}.")
    else:
        config = preset(args.preset or "Fast CNN (70%+ in 3 min on CPU)")
    if config is not None:
        if args.epochs:
            config.epochs = args.epochs
        if args.dataset:
            config.dataset = args.dataset
        config = overrides.apply(config, args.set)
        config.validate()  # an impossible setting is one sentence now, with no job, run folder or progress bar
    job = run_job("train", config, args)
    result = job.result
    print(json.dumps({"run_id": job.run_id, "status": job.status, "test_acc": result.test_acc,
                      "seconds": result.seconds, "parameters": result.parameters}))
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from cnn_lab.evaluate import per_class_accuracy
    from cnn_lab.transfer import PRESETS, TransferConfig, preset

    if args.preset and args.preset not in PRESETS:
        raise CliError(f"No preset {args.preset!r}; the presets are: {', '.join(PRESETS)}.")
    config = None  # with --resume: the run's own
    if not args.resume:
        config = preset(args.preset) if args.preset else TransferConfig()
        config.data, config.backbone = args.data, args.backbone
        if args.mode:
            config.mode = args.mode
        if args.epochs:
            config.epochs = args.epochs
        config = overrides.apply(config, args.set)
    job = run_job("transfer", config, args)
    result = job.result
    per_class = per_class_accuracy(result.test_probs, result.test_labels, len(result.classes))
    print(json.dumps({"run_id": job.run_id, "status": job.status, "test_acc": result.test_acc,
                      "seconds": result.seconds, "classes": len(result.classes),
                      "per_class": dict(zip(result.classes, per_class)), **result.extras}))
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as error:
        raise CliError(f"Cannot read {path}: {error.strerror or error}.") from None


def progress_line(progress) -> tuple[str, float]:
    """A job's progress (metrics.Progress) for the command line: one line with counts, speed and ETA, and how far
    along it is (0 when a stage gives no count)."""
    if progress.training:
        from cnn_lab.jobs.live import duration

        eta = f" · ETA {duration(progress.eta)}" if progress.eta is not None else ""
        return (f"epoch {progress.epoch}/{progress.epochs} · step {progress.step:,} of {progress.total_steps:,} · "
                f"{progress.images_per_s:,.0f} img/s{eta}", progress.step / progress.total_steps)
    return progress.stage or "loading the data", progress.stage_fraction


@contextlib.contextmanager
def progress_display(stream, every: float = 10.0):
    """Yields show(progress, final=False). On a terminal, a tqdm bar redrawn in place; elsewhere (a log file, a
    pipe, CI), plain lines: one when the stage changes and one every `every` seconds, never carriage returns."""
    if stream.isatty():
        from tqdm import tqdm

        with tqdm(total=1000, file=stream, dynamic_ncols=True, bar_format="{desc} |{bar}| {percentage:3.0f}%") as bar:
            def redraw(progress, final: bool = False) -> None:
                text, fraction = progress_line(progress)
                bar.n = round(1000 * fraction)
                bar.set_description_str(text)

            yield redraw
        return
    last = {"stage": None, "time": 0.0}

    def write(progress, final: bool = False) -> None:
        text, _ = progress_line(progress)
        stage = "training" if progress.training else text.split(":")[0]
        if final or stage != last["stage"] or time.monotonic() - last["time"] >= every:
            print(text, file=stream, flush=True)
            last.update(stage=stage, time=time.monotonic())

    yield write


def run_job(kind: str, config, args: argparse.Namespace):
    """Run one job as the app does (a run folder, the same trainer; on the Ray cluster at `--ray` when given) with
    a progress bar on stderr, or resume the run `--resume` names (config None); Ctrl-C stops it and keeps the model
    so far, as `--stop-after` does after that epoch. Returns the ended job (its run id, status and result)."""
    from dataclasses import replace

    from cnn_lab import jobs, runs
    from cnn_lab.identity import Person
    from cnn_lab.settings import load_settings

    manager = jobs.JobManager(replace(load_settings(), shared=False, ray_address=args.ray or ""))
    if args.resume:
        if not runs.exists(args.resume):
            raise CliError(f"No run {args.resume!r} here; `python -m cnn_lab runs` lists them.")
        record = runs.load_run(args.resume)
        if record.kind != kind:
            raise CliError(f"Run {args.resume} is not a {kind} run: resume it with `python -m cnn_lab {record.kind} "
                           f"--resume {args.resume}`.")
        # whoever runs the command line holds the run folders already: they resume it as its owner
        job = manager.resume_run(args.resume, Person(record.owner))
    else:
        job = manager.submit(config, kind=kind)
    job.stop_after = args.stop_after
    with progress_display(sys.stderr) as show:
        while job.alive:
            try:
                show(job.log.snapshot().progress)
                time.sleep(0.25)
            except KeyboardInterrupt:
                manager.stop(job)
                print("Stopping after this step; the model so far is kept.", file=sys.stderr)
        show(job.log.snapshot().progress, final=True)  # where it ended
    if job.result is None:  # failed, or stopped before training
        raise CliError(job.message)
    return job


def cmd_runs(args: argparse.Namespace) -> int:
    from cnn_lab import runs

    records = runs.list_runs()
    if args.json:
        print(json.dumps([{"run": r.run_id, "kind": r.kind, "status": r.status, "epochs": len(r.epochs),
                           "test_acc": r.test_acc, "path": str(r.path)} for r in records]))
        return 0
    if not records:
        print(f"No saved runs yet (they are kept in {runs.runs_root()}).")
    for r in records:
        accuracy = f"{r.test_acc:.1%}" if r.test_acc is not None else "-"
        trained = f"{len(r.epochs)} epochs" if r.epochs or not r.message.startswith("Imported") else "imported"
        about = r.label if r.kind == "onnx" else f"{r.label} · {trained}"  # an ONNX import says where it came from
        print(f"{r.run_id}  {r.kind:8}  {r.status:11}  {about} · test {accuracy}")
    return 0


def _record(run_id: str):
    from cnn_lab import runs

    try:
        return runs.load_run(run_id)
    except (OSError, ValueError, KeyError):
        raise CliError(f"No saved run {run_id!r}; `python -m cnn_lab runs` lists them.") from None


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        raise CliError(f"Cannot write {path}: {error.strerror or error}.") from None


def cmd_export(args: argparse.Namespace) -> int:
    from cnn_lab import checkpoints

    if not (args.onnx or args.checkpoint):
        raise CliError("Say what to write: --onnx FILE, --checkpoint FILE, or both.")
    record = _record(args.run)
    written = {}
    try:
        for path, export in ((args.onnx, checkpoints.onnx_bytes), (args.checkpoint, checkpoints.checkpoint_bytes)):
            if path:
                _write(path, export(record))
                written[Path(path).suffix.lstrip(".") or "file"] = str(Path(path).resolve())
    except ValueError as error:  # subjects.run_subject: a run that cannot be rebuilt
        raise CliError(f"Run {args.run} cannot be exported: {error}.") from None
    print(json.dumps({"run": record.run_id, "classes": record.classes, **written}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from cnn_lab import checkpoints

    try:
        data = Path(args.file).read_bytes()
    except OSError as error:
        raise CliError(f"Cannot read {args.file}: {error.strerror or error}.") from None
    try:
        record = checkpoints.import_model(data, Path(args.file).name, normalisation=args.normalisation)
    except (checkpoints.CheckpointError, checkpoints.OnnxError) as error:
        raise CliError(str(error)) from None
    print(json.dumps({"run": record.run_id, "kind": record.kind, "classes": record.classes, "path": str(record.path)}))
    return 0


def _resuming(command: argparse.ArgumentParser) -> None:
    command.add_argument("--resume", metavar="RUN_ID", help="go on with an interrupted or stopped run from its last "
                         "epoch (its own settings; the options above are not used)")
    command.add_argument("--stop-after", type=int, metavar="EPOCHS",
                         help="stop after this many epochs in all; the run can be resumed later with --resume")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_lab", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train a preset or a config JSON, print a JSON line of results")
    train.add_argument("--preset", help="a preset's name (see the train page)")
    train.add_argument("--config", help="a TrainConfig JSON file")
    train.add_argument("--epochs", type=int)
    train.add_argument("--dataset")
    train.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: auto, local, or host:port")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="any TrainConfig field, nested with dots: --set lr=0.01 --set model.widths=[16,32]")
    _resuming(train)
    train.set_defaults(handler=cmd_train)
    transfer = sub.add_parser("transfer", help="fine-tune a pretrained backbone on an image folder, print JSON")
    transfer.add_argument("--data", default="boats9", help="boats9, an ImageFolder path, or a .zip/.tar.gz")
    transfer.add_argument("--backbone", default="efficientnet_lite0")
    transfer.add_argument("--preset", help="a preset's name (see the transfer page); the options below override it")
    transfer.add_argument("--mode", choices=["probe", "partial", "full"], help="default: the preset's, else probe")
    transfer.add_argument("--epochs", type=int)
    transfer.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: auto, local, or host:port")
    transfer.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                          help="any TransferConfig field: --set lr=0.1 --set image_size=160")
    _resuming(transfer)
    transfer.set_defaults(handler=cmd_transfer)
    listing = sub.add_parser("runs", help="list the saved runs, newest first")
    listing.add_argument("--json", action="store_true", help="as one JSON list")
    listing.set_defaults(handler=cmd_runs)
    export = sub.add_parser("export", help="write a saved run as ONNX and/or as a checkpoint file")
    export.add_argument("run", help="a run's id (see `runs`)")
    export.add_argument("--onnx", metavar="FILE", help="ONNX: pixels in [0, 1] in, logits out; classes in metadata")
    export.add_argument("--checkpoint", metavar="FILE",
                        help="config, weights, classes and normalisation in one .pt (torch.load(weights_only=True))")
    export.set_defaults(handler=cmd_export)
    importing = sub.add_parser("import", help="a checkpoint (.pt, from export or the pages) or any ONNX image "
                               "classifier (.onnx) as a new saved run")
    importing.add_argument("file")
    importing.add_argument("--normalisation", choices=["pixels", "imagenet"], default="pixels",
                           help="an ONNX model's input when its file does not say: pixels in [0, 1], or ImageNet's "
                                "mean and std")
    importing.set_defaults(handler=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except BrokenPipeError:  # `python -m cnn_lab runs | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # noqa: BLE001 - an expected error is a sentence; anything else goes on up
        if not isinstance(error, expected_errors()):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def exit_now(code: int) -> NoReturn:
    """End this process with `code` once its output is flushed, without Python's shutdown. A daemon thread still
    inside a PyTorch operation when Python shuts down aborts the process with SIGABRT and "terminate called without
    an active exception" (the thread is ended by unwinding through C++ that forbids it; PyTorch issue 38228).
    Command-line runs aborted so at exit three times here (in CI, the bench and the suite), each after its run was
    saved. By now every file is written and the result printed: the shutdown has nothing left to do, and skipping
    it leaves nothing that can abort."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # its reader has gone (`runs | head`), with what it wanted
            pass
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
