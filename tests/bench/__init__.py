"""The benchmarks behind BENCHMARKS.md, measured side by side in one run on the current machine:
`python -m tests.bench [--only NAMES] [--quick] [--no-write]` writes their figures into the machine's table there,
and the run's whole table into docs/benchmarks-log.md (tables.py).

Each benchmark returns rows of (what, figure, note). The course's own recipe, and a peer's program where there is
one, are measured in the same run as ours, so the ratios hold on any machine. They live with the tests because they
start the app and drive a browser (tests/launch.py), which the headless core never does; what they time is the core.

common.py     a row, medians, one training run timed in this process
training.py   the course pipeline against our trainer, the presets, streaming and layer norms' cost
processes.py  the CLI and the train page in headless Chromium, as processes
pages.py      the convolution page's slider move, "Inside the network"
transfer.py   feature extraction, the linear probe, the CPU fine-tuning recipe
cluster.py    the Ray executor against the thread executor
"""
