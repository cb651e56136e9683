"""Resumable runs: a run stopped after epoch k and resumed ends exactly where the uninterrupted run with the same
seed ends (on a CPU, bit for bit: weights, test accuracy, every epoch's numbers but its time), through the trainer,
the job manager (same run id and folder, its owner only) and the CLI as a process."""
import json
import os
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from cnn_lab import jobs, runs
from cnn_lab.identity import Person
from cnn_lab.metrics import Control, MetricLog
from cnn_lab.models import ModelSpec
from cnn_lab.train import Checkpoint, Saving, TrainConfig, TrainingError, fit
from tests.helpers import ROOT, wait_for

# every kind of state a checkpoint must carry: momentum, a schedule, lookahead, augmentation draws, dropout, early
# stopping's best epoch
CONFIG = TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16], dropout=0.2), epochs=5, batch_size=64,
                     lr=0.05, optimizer="sgd", schedule="onecycle", augment=["flip", "crop"], lookahead=True,
                     label_smoothing=0.1, patience=10, device="cpu", seed=3)


def _numbers(epochs) -> list[dict]:
    """An epoch's record without its timings (the only part that differs between two runs of the same work)."""
    return [{k: v for k, v in asdict(e).items() if k not in ("seconds", "images_per_s")} for e in epochs]


def test_a_run_stopped_after_epoch_2_and_resumed_ends_as_the_uninterrupted_run():
    whole_log = MetricLog()
    whole = fit(CONFIG, log=whole_log, saving=Saving(lambda model, epochs, state: None))

    kept: list[Checkpoint] = []
    control = Control()

    def stop_after_two(model, epochs, state: Checkpoint) -> None:
        kept.append(state)
        if state.epoch == 2:
            control.stop()  # seen at the next step: epoch 3 is cut short, as a Stop button would

    first_log = MetricLog()
    first = fit(CONFIG, log=first_log, control=control, saving=Saving(stop_after_two))
    assert first.stopped_by_user and [c.epoch for c in kept] == [1, 2]
    checkpoint = Checkpoint(**torch.load(_bytes(kept[-1]), weights_only=True))  # as it is written and read back

    log = MetricLog()
    log.epochs.extend(first_log.epochs)
    resumed = fit(CONFIG, log=log, saving=Saving(lambda model, epochs, state: None, checkpoint))
    assert _numbers(log.epochs) == _numbers(whole_log.epochs) and len(log.epochs) == 5
    assert resumed.test_acc == whole.test_acc and torch.equal(resumed.test_probs, whole.test_probs)
    for (name, a), b in zip(resumed.model.state_dict().items(), whole.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.seconds >= checkpoint.seconds  # the time before the stop counts


def _bytes(checkpoint: Checkpoint):
    import io

    return io.BytesIO(checkpoint.to_bytes())


def test_a_resumed_job_is_the_same_run_and_only_its_owner_or_an_admin_resumes_it(lab_cache):
    manager = jobs.JobManager()
    config = TrainConfig.from_json(CONFIG.to_json())
    config.epochs = 4
    job = manager.submit(config, owner=Person("ada"))
    assert wait_for(lambda: len(job.log.epochs) >= 1, 60)
    manager.stop(job, Person("ada"))
    job.thread.join(60)
    record = runs.load_run(job.run_id)
    done = len(record.epochs)
    assert record.status == "stopped" and record.resumable and 1 <= done < 4
    with pytest.raises(jobs.NotAllowed, match="Only ada or an admin"):
        manager.resume_run(job.run_id, Person("bob"))
    again = manager.resume_run(job.run_id, Person("ada"))
    again.thread.join(120)
    record = runs.load_run(job.run_id)
    assert again.run_id == job.run_id and again.status == "finished" and record.owner == "ada"
    seen = again.log.snapshot()  # its step curve from before the stop goes on: every step once
    assert [step for step, _, _ in seen.steps] == list(range(1, seen.progress.total_steps + 1))
    assert [e.epoch for e in record.epochs] == [1, 2, 3, 4] and record.status == "finished"
    assert not record.resumable
    with pytest.raises(TrainingError, match="cannot be resumed"):
        manager.resume_run(job.run_id, Person("ada"))


def test_a_run_killed_between_its_checkpoint_and_its_epochs_resumes_with_every_epoch_once(lab_cache):
    """Each epoch writes the checkpoint first, then the epoch's metrics: a kill between the two leaves the folder one
    epoch behind its checkpoint. A resumed run takes its epochs from its checkpoint, so none is missing."""
    manager = jobs.JobManager()
    config = TrainConfig.from_json(CONFIG.to_json())
    config.epochs = 4
    job = manager.submit(config, owner=Person("ada"))
    job.stop_after = 2
    job.thread.join(120)
    record = runs.load_run(job.run_id)
    assert [e.epoch for e in record.epochs] == [1, 2] and record.resumable
    runs.save_epochs(job.run_id, record.epochs[:1])  # as if killed between the two writes of epoch 2
    again = manager.resume_run(job.run_id, Person("ada"))
    again.thread.join(120)
    assert again.status == "finished" and [e.epoch for e in runs.load_run(job.run_id).epochs] == [1, 2, 3, 4]


def test_a_tampered_checkpoint_gets_one_sentence_and_the_run_keeps_its_epochs(lab_cache, tmp_path):
    (tmp_path / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="saved state cannot be read"):
        Checkpoint.load(tmp_path)
    (tmp_path / runs.CHECKPOINT_FILE).unlink()
    with pytest.raises(TrainingError, match="kept no state to resume from"):
        Checkpoint.load(tmp_path)
    manager = jobs.JobManager()
    job = manager.submit(TrainConfig.from_json(CONFIG.to_json()), owner=Person("ada"))
    assert wait_for(lambda: len(job.log.epochs) >= 1, 60)
    manager.stop(job, Person("ada"))
    job.thread.join(60)
    kept = runs.load_run(job.run_id).epochs
    (runs.runs_root() / job.run_id / runs.CHECKPOINT_FILE).write_bytes(b"\x80\x04tampered")
    again = manager.resume_run(job.run_id, Person("ada"))
    again.thread.join(60)
    record = runs.load_run(job.run_id)
    assert again.status == "failed" and "saved state cannot be read" in again.message
    assert record.epochs == kept and record.status == "failed"  # nothing lost


def _cli(*arguments: str) -> dict:
    """The command line in a process of its own; its JSON result."""
    done = subprocess.run([sys.executable, "-m", "cnn_lab", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=os.environ)  # the test session's cache: the runs folder this test reads
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.heavy
def test_the_cli_resumes_a_stopped_run_to_the_uninterrupted_run_s_accuracy(lab_cache, tmp_path):
    """`train --resume RUN_ID` in a process of its own, after a run stopped after epoch 2 of 6."""
    config = tmp_path / "config.json"
    config.write_text(CONFIG.to_json())
    whole = _cli("train", "--config", str(config), "--epochs", "6")
    cut = _cli("train", "--config", str(config), "--epochs", "6", "--stop-after", "2")
    record = runs.load_run(cut["run_id"])
    assert cut["status"] == "stopped" and whole["status"] == "finished"
    assert record.status == "stopped" and len(record.epochs) == 2 and record.resumable
    resumed = _cli("train", "--resume", cut["run_id"])
    assert resumed["run_id"] == cut["run_id"] and resumed["test_acc"] == whole["test_acc"]
    epochs = runs.load_run(cut["run_id"]).epochs
    assert [e.epoch for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert _numbers(epochs) == _numbers(runs.load_run(whole["run_id"]).epochs)


@pytest.mark.heavy
@pytest.mark.parametrize("mode", ["probe", "partial", "full"])
def test_transfer_resume_ends_as_the_uninterrupted_run(lab_cache, tmp_path, mode):
    """`transfer --resume` in a process of its own: the linear probe (the head on cached features), the CPU
    fine-tuning recipe (the last block on the frozen blocks' cached outputs, whose checkpoint is the trained part's)
    and full fine-tuning, stopped after epoch 2 of 5 and resumed, give the uninterrupted run's test accuracy. The
    uninterrupted and the stopped runs are jobs of this process, as the app runs them (each command line costs
    seconds of importing torch; the train test above runs all three as processes)."""
    import numpy as np
    from PIL import Image

    from cnn_lab.transfer import TransferConfig

    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        for split, count in (("train", 16), ("val", 4), ("test", 6)):
            folder = tmp_path / "photos" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                noise = rng.integers(0, 60, (48, 48, 3))
                Image.fromarray((np.array(colour) + noise).clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    config = TransferConfig(data=str(tmp_path / "photos"), mode=mode, epochs=5, image_size=64, batch_size=8,
                            **({"unfreeze": 1, "frozen_views": 2} if mode == "partial" else {}))
    manager = jobs.JobManager()
    whole = manager.submit(config, kind="transfer")
    whole.thread.join(300)
    cut = manager.submit(config, kind="transfer")
    cut.stop_after = 2
    cut.thread.join(300)
    assert whole.status == "finished" and cut.status == "stopped" and runs.load_run(cut.run_id).resumable
    resumed = _cli("transfer", "--resume", cut.run_id)
    assert resumed["run_id"] == cut.run_id and resumed["test_acc"] == whole.result.test_acc
    epochs = runs.load_run(cut.run_id).epochs
    assert [e.epoch for e in epochs] == [1, 2, 3, 4, 5]
    assert _numbers(epochs) == _numbers(runs.load_run(whole.run_id).epochs)  # each epoch's losses, to the bit


@pytest.mark.heavy
def test_the_app_s_queue_comes_back_in_order_and_a_third_restart_fails_the_job(monkeypatch, tmp_path):
    """keep_across_restarts: a manager writes its queue as it changes; the next one (a new app process) queues
    again what was running, resuming it, before what waited. A job already resumed after two restarts fails."""
    # its own runs folder: one app process keeps a folder's queue, and the app of this worker's browser tests may
    # be running on the worker's
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    first = jobs.JobManager(max_running=1)
    first.keep_across_restarts()
    config = TrainConfig.from_json(CONFIG.to_json())
    # batches of 4: an epoch of about 360 steps, so that neither job ends while the test reads the queue, though
    # a busy machine starves the test for a few seconds (with 23 steps an epoch, both had ended once)
    config.epochs, config.batch_size = 3, 4
    running = first.submit(config, owner=Person("ada"))
    waiting = first.submit(config, owner=Person("ben"))
    assert wait_for(lambda: len(running.log.epochs) >= 1, 60)
    queue = json.loads((runs.runs_root() / "queue.json").read_text())
    assert [(e["run_id"], e["owner"], e["status"]) for e in queue] == [
        (running.run_id, "ada", "running"), (waiting.run_id, "ben", "queued")]
    first.hand_over_queue()  # the first app "dies": its queue file stays as it was, and its lock goes
    first.stop(running, Person("ada"))
    first.stop(waiting, Person("ben"))
    running.thread.join(60)
    (runs.runs_root() / "queue.json").write_text(json.dumps(queue))
    runs.reopen_run(running.run_id)  # as a killed app leaves it: "running"

    second = jobs.JobManager(max_running=1)
    second.keep_across_restarts()
    busy = jobs.JobManager()
    busy.keep_across_restarts()  # another app on the same folder meanwhile: the queue is the second's, not its own
    assert busy.jobs() == []
    resumed, queued = second.get(running.run_id), second.get(waiting.run_id)
    assert resumed.note.startswith("Resumed after a restart of the app, from epoch") and resumed.restarts == 1
    assert queued.status == "queued" and queued.owner == "ben"
    resumed.thread.join(120)
    assert wait_for(lambda: queued.thread is not None, 60)
    queued.thread.join(120)
    assert queued.status == "finished", queued.message
    assert [e.epoch for e in runs.load_run(running.run_id).epochs] == [1, 2, 3]
    assert json.loads((runs.runs_root() / "queue.json").read_text()) == []

    stuck = [dict(queue[0], restarts=2)]  # it ran through two restarts already, and the app stopped again
    runs.reopen_run(running.run_id)
    (runs.runs_root() / "queue.json").write_text(json.dumps(stuck))
    second.hand_over_queue()
    third = jobs.JobManager()
    third.keep_across_restarts()
    record = runs.load_run(running.run_id)
    assert third.get(running.run_id) is None and record.status == "failed"
    assert record.message.startswith("The app stopped 3 times while this run ran")
    third.hand_over_queue()
