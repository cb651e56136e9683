"""Jobs on a real local Ray cluster (started by the tests, no mock; 2 CPUs and 1 per job: room for two):
queued by Ray's resources, streamed, stopped, and lost workers reported; the same seed gives the thread
executor's accuracy."""
import os
import signal
import time

import pytest

from cnn_lab import jobs, runs
from cnn_lab.identity import Person
from cnn_lab.models import ModelSpec
from cnn_lab.settings import Settings
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, wait_for


@pytest.fixture(scope="module")
def cluster(lab_cache, ray_module):
    ray = ray_module
    env = {"PYTHONPATH": str(ROOT)} | {k: v for k, v in os.environ.items() if k.startswith("CNN_LAB_")}
    from cnn_lab.jobs import ray_executor

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env},
             _node_ip_address="127.0.0.1")  # loopback only
    ray_executor.CPUS_PER_JOB = 1  # two digits jobs at once on this 2-core machine, one torch thread each
    yield jobs.JobManager(Settings(ray_address="local"))
    ray_executor.CPUS_PER_JOB = 2
    ray.shutdown()


def _digits(epochs: int, seed: int = 0) -> TrainConfig:
    return TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=epochs, batch_size=64,
                       seed=seed, device="cpu")


def test_three_jobs_with_room_for_two(cluster):
    # 80 epochs: long enough for each job to stream several updates even on a loaded machine (40 saw one, twice)
    submitted = [cluster.submit(_digits(80), owner=Person(f"p{i}")) for i in range(3)]
    placed, ended, updates = {}, {}, {job.run_id: set() for job in submitted}
    end = time.time() + 300
    while time.time() < end and any(job.alive for job in submitted):
        for job in submitted:
            progress = job.log.snapshot().progress
            if progress.node:
                placed.setdefault(job.run_id, time.time())
            if progress.step and job.alive:
                updates[job.run_id].add(progress.step)
            if not job.alive:
                ended.setdefault(job.run_id, time.time())
        time.sleep(0.1)
    assert [job.status for job in submitted] == ["finished"] * 3, [job.message for job in submitted]
    assert all(len(seen) >= 2 for seen in updates.values()), updates  # each streamed while it ran
    first_two, third = sorted(submitted, key=lambda j: placed[j.run_id])[:2], max(placed.values())
    # Ray held the third until a CPU was free: it was placed as the first of the two ended, not beside them. Seen
    # from here a job ends only once its result is back and its run saved, after Ray has placed the next one (0.9 s
    # after, once, in a suite run): so "as it ended" is "in the second half of its run".
    started, first_end = max(placed[j.run_id] for j in first_two), min(ended[j.run_id] for j in first_two)
    assert third - started > 0.5 * (first_end - started), (third - started, first_end - started)
    for job in submitted:
        record = runs.load_run(job.run_id)
        assert record.status == "finished" and len(record.epochs) == 80 and (record.path / "model.pt").exists()


def test_same_seed_same_accuracy_as_the_thread_executor(cluster):
    on_ray = cluster.submit(_digits(6, seed=3))
    here = jobs.JobManager(Settings()).submit(_digits(6, seed=3))
    for job in (on_ray, here):
        assert wait_for(lambda: not job.alive, 300) and job.status == "finished", job.message
    assert abs(on_ray.result.test_acc - here.result.test_acc) <= 0.01, (on_ray.result.test_acc, here.result.test_acc)


def test_stop_reaches_the_worker(cluster):
    job = cluster.submit(_digits(2000), owner=Person("ada"))
    assert wait_for(lambda: job.log.snapshot().progress.step > 20, 120)
    cluster.stop(job, Person("ada"))
    assert wait_for(lambda: not job.alive, 60)
    assert job.status == "stopped" and job.message.startswith("Stopped by the user")
    assert runs.load_run(job.run_id).status == "stopped"


def test_a_stopped_ray_job_resumes_on_a_worker_from_its_checkpoint(cluster):
    """The checkpoint streams to the app with each epoch's weights; resumed, the task starts from it on a worker
    and the run ends with every epoch once, as the same run."""
    job = cluster.submit(_digits(60, seed=3), owner=Person("ada"))
    job.stop_after = 2  # seen when the app receives epoch 2: the worker stops a few epochs later
    assert wait_for(lambda: not job.alive, 300) and job.status == "stopped", job.message
    assert runs.load_run(job.run_id).resumable
    again = cluster.resume_run(job.run_id, Person("ada"))
    assert wait_for(lambda: not again.alive, 300) and again.status == "finished", again.message
    record = runs.load_run(job.run_id)
    assert [e.epoch for e in record.epochs] == list(range(1, 61)) and record.status == "finished"


def test_a_killed_worker_fails_the_job_and_keeps_its_epochs(cluster):
    job = cluster.submit(_digits(2000))
    assert wait_for(lambda: len(job.log.snapshot().epochs) >= 2, 120)
    os.kill(job.log.snapshot().progress.worker_pid, signal.SIGKILL)
    assert wait_for(lambda: not job.alive, 60)
    assert job.status == "failed" and "worker running it was lost" in job.message
    record = runs.load_run(job.run_id)
    assert record.status == "failed" and len(record.epochs) >= 2 and (record.path / "model.pt").exists()


def test_the_cli_runs_a_job_on_a_local_cluster(tmp_path, cluster, ray_module):
    """Last in this module: it ends with `ray stop`, which ends every Ray process of the machine."""
    import json
    import subprocess
    import sys

    from cnn_lab.presets import preset
    from tests.helpers import DATA_DIR

    # one command line (each one starts Python, torch and a Ray driver: a minute of the suite on a busy machine):
    # the course CNN when CIFAR-10 is here, its data read on the worker; else the digits preset
    arguments, floor = ["--preset", "Digits (seconds, built in)"], 0.9
    if DATA_DIR is not None and (DATA_DIR / "cifar10-jpg.tar.gz").exists():
        course = preset("Course: CNN")
        course.epochs, course.max_train = 1, 2000
        (tmp_path / "course.json").write_text(course.to_json())
        arguments, floor = ["--config", str(tmp_path / "course.json")], 0.2
    out = subprocess.run([sys.executable, "-m", "cnn_lab", "train", *arguments, "--ray", "local"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["test_acc"] > floor, result
    ray_module.shutdown()
    subprocess.run([sys.executable, "-c", "from ray.scripts.scripts import main; main()", "stop"], timeout=120)
