"""Command line: `python -m cnn_lab {train,transfer,bench} ...`, the same core as the pages, headless."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_train(args: argparse.Namespace) -> int:
    from cnn_lab.presets import preset
    from cnn_lab.train import TrainConfig, train

    if args.config:
        config = TrainConfig.from_json(Path(args.config).read_text())
    else:
        config = preset(args.preset or "Fast CNN (70%+ in 3 min on CPU)")
    if args.epochs:
        config.epochs = args.epochs
    if args.dataset:
        config.dataset = args.dataset
    result = on_ray(args.ray, "train", config) if args.ray else train(config)
    print(json.dumps({"test_acc": result.test_acc, "seconds": result.seconds, "parameters": result.parameters}))
    return 0


def on_ray(address: str, kind: str, config):
    """Run one job on the Ray cluster at `address` ("auto", "local" or host:port) and return its result; the
    run folder is written here, as the app does."""
    from dataclasses import replace

    from cnn_lab import jobs
    from cnn_lab.settings import load_settings

    manager = jobs.JobManager(replace(load_settings(), ray_address=address))
    job = manager.submit(config, kind=kind)  # starts at once: Ray holds it until its resources are free
    job.thread.join()
    if job.result is None:
        raise SystemExit(job.message)
    return job.result


def cmd_transfer(args: argparse.Namespace) -> int:
    from cnn_lab.evaluate import per_class_accuracy
    from cnn_lab.transfer import TransferConfig, preset, run_transfer

    config = preset(args.preset) if args.preset else TransferConfig()
    config.data, config.backbone = args.data, args.backbone
    if args.mode:
        config.mode = args.mode
    if args.epochs:
        config.epochs = args.epochs
    result = on_ray(args.ray, "transfer", config) if args.ray else run_transfer(config)
    per_class = per_class_accuracy(result.test_probs, result.test_labels, len(result.classes))
    print(json.dumps({"test_acc": result.test_acc, "seconds": result.seconds, "classes": len(result.classes),
                      "per_class": dict(zip(result.classes, per_class)), **result.extras}))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from cnn_lab import bench

    section = bench.run(args.only.split(","), quick=args.quick)
    if not args.no_write:
        bench.write(section, Path(args.output))
    print(section)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_lab", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train a preset or a config JSON, print a JSON line of results")
    train.add_argument("--preset", help="a preset's name (see the train page)")
    train.add_argument("--config", help="a TrainConfig JSON file")
    train.add_argument("--epochs", type=int)
    train.add_argument("--dataset")
    train.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: auto, local, or host:port")
    train.set_defaults(handler=cmd_train)
    transfer = sub.add_parser("transfer", help="fine-tune a pretrained backbone on an image folder, print JSON")
    transfer.add_argument("--data", default="boats9", help="boats9, an ImageFolder path, or a .zip/.tar.gz")
    transfer.add_argument("--backbone", default="efficientnet_lite0")
    transfer.add_argument("--preset", help="a preset's name (see the transfer page); the options below override it")
    transfer.add_argument("--mode", choices=["probe", "partial", "full"], help="default: the preset's, else probe")
    transfer.add_argument("--epochs", type=int)
    transfer.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: auto, local, or host:port")
    transfer.set_defaults(handler=cmd_transfer)
    bench = sub.add_parser("bench", help="run benchmarks and add their table to BENCHMARKS.md")
    bench.add_argument("--only", default="data,conv,course,fast,speedrun,streaming,transfer", help="comma-separated benchmark names")
    bench.add_argument("--quick", action="store_true", help="fewer epochs and batches")
    bench.add_argument("--output", default="BENCHMARKS.md")
    bench.add_argument("--no-write", action="store_true")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
