"""Shared fixtures, and the test tiers they decide. A test's marks come from the fixtures it uses (and its folder),
so none can be forgotten: real data (`cifar10`, `boats9_folder`, `boats9_archive`, `cifar10_archive`) makes it
`slow`; a browser (`browser`, `page`, `app_url`), or a place in tests/e2e/ (the whole app running), makes it `e2e`;
a Ray cluster (`ray_module`) makes it `ray`; a test with none of these is `fast` (`pytest -m fast`, the tier to run
while working, about 2 minutes) unless it is marked `heavy`: it runs the CLI or the app as a process of its own, a
command line's whole run, or many start-stop cycles (seconds of a whole process's work each). pytest.ini runs three pytest-xdist workers on the two cores; `-n 0` runs in this process (for one
test, or a debugger)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import DATA_DIR, ROOT, require_archive, use_manager

E2E = Path(__file__).parent / "e2e"
TIERS = {
    "slow": {"cifar10", "cifar10_archive", "boats9_archive", "boats9_folder"},
    "e2e": {"browser", "page", "app_url"},
    "ray": {"ray_module"},
}


# xdist hands out whole modules (pytest_xdist_make_scheduler below), so that a module's fixtures are built once a
# run (the probe of test_transfer.py was built by every worker that took one of its tests), and an idle worker takes
# the next module of this order: the longest first (by the suite's --durations), browser modules between the others
# (several browsers and apps at once slowed every page), so that the workers end together. The two Ray modules go
# first, as one: they use the machine's one cluster in turn (a worker would wait for the other's), and the other
# workers yield to them (pytest_runtest_setup).
LONGEST_FIRST = ("test_ray_page.py", "test_ray.py", "test_workflows.py", "test_transfer.py", "test_speedrun.py",
                 "test_restart.py", "test_resume.py", "test_hostile.py", "test_pages_in_browser.py", "test_shared.py",
                 "test_accessibility.py", "test_shared_server.py", "test_transfer_presets.py", "test_inside_page.py",
                 "test_page_transfer.py", "test_class_page.py", "test_newcomer.py", "test_onnx_import.py",
                 "test_page_train.py")
RAY_MODULES = ("test_ray_page.py", "test_ray.py")


def pytest_itemcollected(item) -> None:
    """A test's tiers, from its fixtures and its folder."""
    used = set(getattr(item, "fixturenames", ()))
    tiers = [tier for tier, fixtures in TIERS.items() if used & fixtures]
    if "e2e" not in tiers and E2E in Path(item.fspath).parents:  # the whole app as a server, with no browser
        tiers.append("e2e")
    if item.get_closest_marker("heavy"):
        tiers.append("heavy")
    for tier in tiers or ["fast"]:
        item.add_marker(getattr(pytest.mark, tier))


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=lambda item: (LONGEST_FIRST + (Path(item.fspath).name,)).index(Path(item.fspath).name))


NICE = 5  # the other workers' priority while the Ray tests run (pytest_runtest_setup)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    """The Ray tests wait on many processes (a cluster, its workers, an app), and beside the other workers'
    CPU-bound tests they took four times as long as alone: the suite's longest path. So a worker lowers its priority
    (nice 5: about a third of a core's share against nice 0) before its first test that is not a Ray test, and what
    it starts (apps, browsers) inherits it; the Ray tests go first, on a worker still at 0, and their clusters run
    their workers at 0 too (ray_module). A priority is no limit: an idle core goes to whoever waits."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "ray_module" not in item.fixturenames and os.nice(0) < NICE:
        os.nice(NICE - os.nice(0))


def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduling by module (--dist loadscope), with the Ray modules as one unit. (Its --dist loadgroup would
    do it with marks, but does not work with pytest 9: it renames a test's node id the old way.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "ray" if Path(module).name in RAY_MODULES else module

    return ByModule(config, log)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread_per_worker() -> None:
    """With pytest-xdist's workers on two cores, each worker's torch uses one thread instead of two, and so do the
    app and CLI processes the tests start (OMP_NUM_THREADS, which they inherit): with more threads than cores, each
    waits for the others by spinning (OpenMP's barrier), and a CLI beside two busy workers took 38 s instead of 8
    (docs/benchmarks-log.md, the suite's time)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session", autouse=True)
def lab_cache(tmp_path_factory) -> Path:
    """Every test session gets its own cache, shared by its tests, so archives are extracted only once. The xdist
    workers also share their extracted archives, decoded arrays and features (each written whole, then renamed, as
    two people's apps on one server share them), so that CIFAR-10 is decoded once a run and not once a worker, and
    boats9's features are extracted once; each worker keeps its own runs and queue."""
    cache = Path(os.environ.get("CNN_LAB_TEST_CACHE") or tmp_path_factory.mktemp("cnn_lab_cache"))
    if not os.environ.get("CNN_LAB_TEST_CACHE") and os.environ.get("PYTEST_XDIST_WORKER"):
        for folder in ("extracted", "datasets", "features"):
            shared = tmp_path_factory.getbasetemp().parent / "shared_cache" / folder  # the workers' common parent
            shared.mkdir(parents=True, exist_ok=True)
            (cache / folder).symlink_to(shared, target_is_directory=True)
    os.environ["CNN_LAB_CACHE"] = str(cache)
    os.environ["CNN_LAB_DATA"] = str(DATA_DIR or "")  # the app started by the browser tests sees the same
    return cache


@pytest.fixture(autouse=True)
def job_manager(monkeypatch):
    """Each test its own job manager, as a fresh app process has: no job, result or queue of an earlier test shows
    on its pages (a finished job's results panel made every rerun of the train page cost more). Jobs still alive at
    the end are stopped, and their threads joined, before the next test."""
    from cnn_lab import jobs

    fresh = jobs.JobManager()
    use_manager(monkeypatch, fresh)
    yield fresh
    for job in fresh.jobs():
        if job.alive:
            fresh.stop(job)
        if job.thread:
            job.thread.join(timeout=60)


@pytest.fixture(scope="session")
def cifar10_archive() -> Path:
    return require_archive("cifar10-jpg")


@pytest.fixture(scope="session")
def boats9_archive() -> Path:
    return require_archive("boats9")


@pytest.fixture(scope="session")
def cifar10(lab_cache, cifar10_archive):
    """CIFAR-10 decoded from the JPEG archive (once per run: a worker that comes second waits for the first one's
    arrays rather than decoding its own; later loads hit the array cache)."""
    from filelock import FileLock

    from cnn_lab import data

    (lab_cache / "datasets").mkdir(exist_ok=True)
    with FileLock(lab_cache / "datasets" / ".cifar10.lock"):
        return data.load_dataset("cifar10")


@pytest.fixture(scope="session")
def boats9_folder(lab_cache, boats9_archive) -> Path:
    """The extracted boats9 tree (train/val/test/<class>/)."""
    from cnn_lab import data

    return data.dataset_root(data.extract_archive(boats9_archive))


@pytest.fixture(scope="module")
def ray_module(tmp_path_factory):
    """Ray, when it is installed (requirements-test.txt installs it), else a skip that says so. One test module at a
    time uses Ray on this machine, whichever pytest worker runs it: each starts a cluster, or stops every cluster."""
    ray = pytest.importorskip("ray", reason="ray is in requirements-test.txt; install it to run the Ray tests")
    from filelock import FileLock

    # Ray runs its workers at nice 15 (its raylet first), so a job's training waited behind every other test: at 0
    # here, as the other workers yield to the Ray tests (pytest_runtest_setup). The clusters the tests start (in this
    # process, or by an app or a command line they start) read it from the environment.
    os.environ["RAY_worker_niceness"] = "0"
    try:
        with FileLock(tmp_path_factory.getbasetemp().parent / "ray.lock"):  # the workers' base folders share a parent
            yield ray
    finally:
        del os.environ["RAY_worker_niceness"]


@pytest.fixture
def run_page():
    """The one way a test opens a page headless (Streamlit's AppTest): `run_page("pages/5_train.py")` runs the page
    once and returns it; `query` sets the address bar's parameters first (a shared link), and `opened` names the
    sections (expanders, by key) that the user opens before (the train page's "Settings")."""
    from streamlit.testing.v1 import AppTest

    def run(path: str | Path, query: dict[str, str] | None = None, opened: tuple[str, ...] = ()):
        at = AppTest.from_file(str(ROOT / path), default_timeout=120)  # a limit for a busy machine, not a speed test
        at.query_params.update(query or {})
        for key in opened:
            at.session_state[key] = True
        return at.run()

    return run
