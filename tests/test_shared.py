"""Many learners, one server: owners, the fair queue, identities, fenced folders, budgets, and the hostile inputs
of issue 15, each as a test on the real core."""
import ctypes
import io
import os
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import psutil
import pytest
import torch
from PIL import Image

from cnn_lab import data, identity, jobs, limits, runs, transfer
from cnn_lab.data import folders
from cnn_lab.identity import Person
from cnn_lab.jobs.queue import FairQueue, QueueFull, Ticket, start_times
from cnn_lab.metrics import MetricLog
from cnn_lab.models import ModelSpec
from cnn_lab.settings import Settings
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT, peak_of_cli, wait_for

ALICE, BOB, ADMIN = Person("alice"), Person("bob"), Person("teacher", admin=True)


def _digits(epochs: int = 2) -> TrainConfig:
    return TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=epochs, batch_size=64)


# ---------------------------------------------------------------- the queue's rules


def test_fair_queue_order_cap_and_one_running_per_person():
    queue = FairQueue(per_person=2)
    for job_id, owner in (("a1", "alice"), ("a2", "alice"), ("b1", "bob")):
        queue.push(Ticket(job_id, owner))
    with pytest.raises(QueueFull, match="2 job\\(s\\) waiting, the most allowed"):
        queue.push(Ticket("a3", "alice"))
    assert queue.pop_next(busy={"alice"}).job_id == "b1"  # alice runs already: bob's job goes first
    assert queue.pop_next(busy=set()).job_id == "a1"
    assert queue.remove("a2") and len(queue) == 0


def test_start_times_fill_the_free_slots_in_order():
    # two slots: one free now, one free in 10 s; three waiting jobs of 5 s each
    assert start_times([10.0], [5.0, 5.0, 5.0], slots=2) == [0.0, 5.0, 10.0]
    assert start_times([3.0, 8.0], [4.0, 4.0], slots=2) == [3.0, 7.0]


# ---------------------------------------------------------------- the manager in shared mode


def _shared(**changes) -> jobs.JobManager:
    return jobs.JobManager(Settings(shared=True, **changes))


def test_only_the_owner_or_an_admin_controls_a_job_and_the_queue_moves_on():
    manager = _shared(max_running=1)
    a = manager.submit(_digits(epochs=300), owner=ALICE)
    b = manager.submit(_digits(), owner=BOB)
    assert a.status == "running" and b.status == "queued" and manager.position(b) == 1
    for verb in (manager.pause, manager.stop):
        with pytest.raises(jobs.NotAllowed, match="Only alice or an admin"):
            verb(a, BOB)
    assert a.status == "running" and not a.control.stop_requested.is_set()
    manager.stop(a, ADMIN)  # the teacher stops alice's job
    assert wait_for(lambda: a.status == "stopped")
    assert a.message.startswith("Stopped by teacher")
    assert wait_for(lambda: b.status == "finished")  # bob's started by itself when the slot freed
    assert b.started >= a.started and runs.load_run(b.run_id).owner == "bob"


def test_per_person_cap_and_one_running_each():
    manager = _shared(max_running=2, queued_per_person=1)
    first = manager.submit(_digits(epochs=300), owner=ALICE)
    second = manager.submit(_digits(), owner=ALICE)  # alice has one running: this one waits, though a slot is free
    assert first.status == "running" and second.status == "queued"
    with pytest.raises(QueueFull, match="already have 1 job\\(s\\) waiting"):
        manager.submit(_digits(), owner=ALICE)
    bob = manager.submit(_digits(), owner=BOB)
    assert bob.status == "running"  # the free slot goes to bob
    for job in (first, second, bob):
        manager.stop(job, ADMIN)
    assert wait_for(lambda: not any(j.alive for j in (first, second, bob)))


def test_time_limit_and_pause_timeout_give_the_device_back():
    manager = _shared(max_running=2, time_limit_minutes=1, pause_timeout_minutes=1)
    long, paused = manager.submit(_digits(epochs=500), owner=ALICE), manager.submit(_digits(epochs=500), owner=BOB)
    assert wait_for(lambda: long.log.snapshot().steps and paused.log.snapshot().steps)
    manager.pause(paused, BOB)
    manager.enforce_limits(now=time.time() + 61)  # a minute later
    assert wait_for(lambda: not long.alive and not paused.alive)
    assert long.status == "stopped" and "time limit of 1 minutes" in long.message
    assert paused.status == "stopped" and "gave the device back" in paused.message


def test_estimated_wait_uses_like_jobs_that_ran():
    manager = _shared(max_running=1)
    done = manager.submit(_digits(), owner=ALICE)
    assert wait_for(lambda: not done.alive) and done.status == "finished"
    assert manager.expected_seconds(done) == pytest.approx(done.result.seconds, rel=0.01)
    running = manager.submit(_digits(epochs=400), owner=ALICE)
    waiting = manager.submit(_digits(), owner=BOB)
    assert wait_for(lambda: running.log.snapshot().progress.eta is not None)
    wait = manager.estimated_wait(waiting)
    assert wait is not None and wait == pytest.approx(running.log.snapshot().progress.eta, abs=5)
    manager.stop(running, ADMIN)
    manager.stop(waiting, ADMIN)
    assert wait_for(lambda: not running.alive)


def test_twenty_people_two_slots_all_finish_once_in_queue_order():
    """The bounded load test: 20 people each start a digits job on 2 slots."""
    manager = _shared(max_running=2)
    warm_up = manager.submit(_digits(), owner=Person("warm-up"))  # the first job initialises torch's thread pools
    assert wait_for(lambda: not warm_up.alive)
    process, trim = psutil.Process(), ctypes.CDLL("libc.so.6").malloc_trim  # RSS of live memory, not freed heap
    trim(0)
    rss_before = process.memory_info().rss
    people = [Person(f"learner{i:02d}") for i in range(20)]
    submitted = [manager.submit(_digits(), owner=person) for person in people]
    assert [manager.position(job) for job in submitted[2:]] == list(range(1, 19))
    assert wait_for(lambda: all(job.status == "finished" for job in submitted), 600)
    started = sorted(submitted, key=lambda job: job.started)
    assert started == submitted  # first come, first served
    saved = [r for r in runs.list_runs() if r.run_id in {job.run_id for job in submitted}]
    assert len(saved) == 20 and {r.owner for r in saved} == {p.name for p in people}  # none lost, none twice
    waits = [job.started - job.submitted for job in submitted]
    trim(0)
    growth = (process.memory_info().rss - rss_before) / 2**20
    print(f"waits: first {waits[0]:.1f} s, median {sorted(waits)[10]:.1f} s, last {waits[-1]:.1f} s; "
          f"RSS growth {growth:.0f} MiB")
    assert growth < 150


# ---------------------------------------------------------------- identities


def test_a_claimed_name_needs_its_key(tmp_path):
    people = identity.People(tmp_path / "people.json")
    alice, key = people.claim("Alice")
    assert alice == Person("Alice") and people.by_key(key) == alice
    assert people.by_key("guess") is None and people.by_key("") is None
    with pytest.raises(identity.IdentityError, match="is taken"):
        people.claim("alice")  # another person cannot take her name (and her jobs)
    with pytest.raises(identity.IdentityError, match="1 to 32 letters"):
        people.claim("<script>")
    with pytest.raises(identity.IdentityError, match="admin password is not right"):
        people.claim("Mallory", admin_password="guess", expected_password="s3cret")
    teacher, teacher_key = people.claim("Teacher", admin_password="s3cret", expected_password="s3cret")
    assert teacher.admin and people.by_key(teacher_key).admin
    assert key not in (tmp_path / "people.json").read_text()  # only hashes are stored


# ---------------------------------------------------------------- folders a browser may name


@pytest.fixture
def shared_mode(monkeypatch, tmp_path):
    data_folder = tmp_path / "data"
    (data_folder / "photos" / "kayak").mkdir(parents=True)
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    monkeypatch.setenv("CNN_LAB_DATA", str(data_folder))
    return data_folder


def test_shared_mode_fences_folder_inputs(shared_mode, tmp_path):
    assert limits.allowed_folder(str(shared_mode / "photos")) == (shared_mode / "photos").resolve()
    with pytest.raises(limits.LimitError, match="only folders inside"):  # the uploads are no folder to type (issue 55)
        limits.allowed_folder(str(limits.uploads_root()))
    (shared_mode / "escape").symlink_to("/etc")
    for outside in ("/", "/etc", str(shared_mode / "photos" / ".." / ".."), str(shared_mode / "escape"), "~"):
        with pytest.raises(limits.LimitError, match="only folders inside"):
            limits.allowed_folder(outside)
    for empty in ("", "   "):
        with pytest.raises(limits.LimitError, match="empty path"):
            limits.allowed_folder(empty)


def test_local_mode_allows_any_folder_but_not_an_empty_path(monkeypatch):
    monkeypatch.delenv("CNN_LAB_SHARED", raising=False)
    assert limits.allowed_folder("/") == limits.Path("/")
    with pytest.raises(limits.LimitError, match="empty path"):
        limits.allowed_folder("")


# ---------------------------------------------------------------- uploads, archives, budgets


def _zip_of_gifs(count: int) -> bytes:
    gif = io.BytesIO()
    Image.new("P", (1, 1)).save(gif, "GIF")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(count):
            zf.writestr(f"tiny/{'ab'[i % 2]}/{i}.gif", gif.getvalue())
    return buffer.getvalue()


@pytest.mark.heavy
def test_many_tiny_images_are_refused_before_decoding(monkeypatch):
    """In local mode too, a folder whose decoded arrays alone would pass the budget is refused before decoding."""
    monkeypatch.setattr(folders, "_decode", lambda *a: pytest.fail("decoding started"))
    monkeypatch.setenv("CNN_LAB_DECODE_BUDGET_GB", "2")
    archive = limits.save_upload(_zip_of_gifs(20_000), "tiny.zip")
    assert archive.stat().st_size < 25 * 2**20  # within the upload limit
    rss = psutil.Process().memory_info().rss
    with pytest.raises(data.DatasetError, match="20,000 images at 224x224 pixels would take 2.8 GB"):
        data.load_folder(data.dataset_root(data.extract_archive(archive)), size=224)
    assert (psutil.Process().memory_info().rss - rss) / 2**20 < 100


@pytest.mark.heavy
@pytest.mark.parametrize("what", ["many tiny images", "a zip bomb"])
def test_a_hostile_upload_is_one_sentence_within_the_memory_budget_in_shared_mode(tmp_path, what):
    """Issue 32: 20,000 GIFs of one pixel (2.7 MB, accepted before and 3.75 GB at its peak) and a zip of about 2 GB
    of zeros, given to the CLI's linear probe on a shared server: one sentence each, before anything is decoded
    or extracted, and the process stays far under the memory budget (6 GB)."""
    archive = tmp_path / "upload.zip"
    if what == "many tiny images":
        archive.write_bytes(_zip_of_gifs(20_000))
        expected = "The archive upload.zip holds 20,000 files, more than the 10,000 this server takes from one"
    else:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb/a/zeros.png", "w") as file:
            zeros = bytes(2**24)
            for _ in range(115):  # 1.9 GB: under the 2 GB size limit, so only the ratio can refuse it
                file.write(zeros)
        assert archive.stat().st_size < 5 * 2**20
        expected = "unpacks to 1,840 MB in 1 file ("
    done, peak_gb = peak_of_cli(["transfer", "--data", str(archive), "--mode", "probe"],
                                 {"CNN_LAB_SHARED": "1", "CNN_LAB_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 2 and expected in done.stderr, done.stderr[-2000:]
    assert len([line for line in done.stderr.splitlines() if line.startswith("error:")]) == 1
    assert peak_gb < 1.6, peak_gb  # the interpreter, torch and the backbone: nothing of the upload
    assert not list((tmp_path / "cache").rglob("zeros.png"))  # nothing extracted


def test_an_upload_that_would_decode_to_far_more_pixels_than_its_bytes_is_refused(monkeypatch, tmp_path):
    """Under the count limit, 5,000 one-pixel GIFs (200 kB) would still decode to 128 million pixels at 160x160:
    refused in shared mode before decoding; the same folder in the teacher's data folder, or in local mode (the
    person's own machine), goes on to be decoded."""
    def decoding(*args):
        raise RuntimeError("decoding started")

    monkeypatch.setattr(folders, "_decode", decoding)
    folder = data.dataset_root(data.extract_archive(limits.save_upload(_zip_of_gifs(5_000), "tiny.zip")))
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    with pytest.raises(data.DatasetError, match=r"would decode to 128 million pixels at 160x160 \(\d[\d,]* per byte"):
        data.load_folder(folder, size=160, upload=True)
    few = data.dataset_root(data.extract_archive(limits.save_upload(_zip_of_gifs(6), "six.zip")))
    with pytest.raises(data.DatasetError, match=r"These 6 files take \d+\.\d kB but would decode to 153,600 pixels at"):
        data.load_folder(few, size=160, upload=True)  # small figures in their own words, not "0.0 MB", "0 million"
    monkeypatch.setenv("CNN_LAB_UPLOAD_MAX_IMAGES", "4999")
    with pytest.raises(data.DatasetError, match="holds more than 4,999 files, the most one upload may bring"):
        data.load_folder(folder, size=160, upload=True)
    monkeypatch.setenv("CNN_LAB_DATA", str(folder.parent))  # the same folder, put in the data folder by the teacher
    with pytest.raises(RuntimeError, match="decoding started"):
        data.load_folder(folder, size=160, upload=True)
    monkeypatch.setenv("CNN_LAB_DATA", "")
    monkeypatch.delenv("CNN_LAB_SHARED")
    with pytest.raises(RuntimeError, match="decoding started"):  # local mode: on to the decoding
        data.load_folder(folder, size=160, upload=True)


def test_a_job_whose_whole_peak_would_pass_the_budget_is_refused_before_decoding(monkeypatch, tmp_path):
    """Issue 32: the budget bounds a transfer job's whole peak memory (estimated from the measured figures), not only
    its decoded photos. The same 40 photos: a full fine-tune on this CPU (about 4 GB: the backbone's activations
    kept for backpropagation) is refused in one sentence before decoding; the linear probe (about 1.2 GB) goes on,
    so does the fine-tune on a GPU (its activations are in the GPU's memory), and in local mode."""
    from tests.helpers import noise_folder

    def decoding(*args):
        raise RuntimeError("decoding started")

    monkeypatch.setattr(folders, "_decode", decoding)
    folder = noise_folder(tmp_path / "photos", ["kayak", "tug"], per_class=20, size=(32, 32))
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    monkeypatch.setenv("CNN_LAB_DECODE_BUDGET_GB", "3")
    full = transfer.TransferConfig(data=str(folder), mode="full", device="cpu", image_size=160)
    with pytest.raises(data.DatasetError, match=r"^This job would take about 3\.8 GB of memory at its peak \(its 40 "
                       r"photos at 160x160 pixels and the network training on them\), over this server's 3\.0 GB"):
        transfer.load_images(full)
    for config in (transfer.TransferConfig(data=str(folder), mode="probe", device="cpu"),
                   transfer.TransferConfig(data=str(folder), mode="full", device="cuda")):
        with pytest.raises(RuntimeError, match="decoding started"):
            transfer.load_images(config)
    monkeypatch.delenv("CNN_LAB_SHARED")
    with pytest.raises(RuntimeError, match="decoding started"):
        transfer.load_images(full)


def test_the_same_upload_twice_is_stored_and_extracted_once():
    """The same file twice is one file, extracted once. The same bytes under another name are the same file on disk
    (a link), under the name that person gave it: nobody sees another person's file name."""
    content = _zip_of_gifs(10)
    first, again = limits.save_upload(content, "a.zip"), limits.save_upload(content, "a.zip")
    assert first == again and first.name == "a.zip"
    folder = data.extract_archive(first)
    mtime = (folder / ".complete").stat().st_mtime_ns
    assert data.extract_archive(again) == folder and (folder / ".complete").stat().st_mtime_ns == mtime
    renamed = limits.save_upload(content, "renamed.zip")
    assert renamed.name == "renamed.zip" and renamed.parent == first.parent
    assert renamed.stat().st_ino == first.stat().st_ino  # one copy of the bytes


@pytest.mark.parametrize("name, stored", [
    ("../../../etc/cron.d/evil.zip", "evil.zip"), ("C:\\Users\\me\\boats.zip", "boats.zip"),
    (".hidden.zip", "hidden.zip"), ("...", "upload"), ("we;rd $(rm -rf ~).zip", "we_rd _(rm -rf _).zip"),
    ("x" * 500 + ".TAR.GZ", "x" * 100 + ".tar.gz"), ("photos." + "z" * 300, "photos." + "z" * 9),
])
def test_an_upload_s_name_is_made_safe_and_stays_inside_the_uploads_folder(name, stored):
    path = limits.save_upload(_zip_of_gifs(2), name)
    assert path.name == stored and path.parent.parent == limits.uploads_root()


def test_a_sentence_about_an_upload_names_the_file_the_person_gave(monkeypatch):
    """Not the server's cache folder, nor the hash it is filed under."""
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    photo = io.BytesIO()
    Image.new("RGB", (40, 40)).save(photo, "PNG")

    def zipped(*names: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for entry in names:
                zf.writestr(entry, photo.getvalue())
        return buffer.getvalue()

    cases = {
        "my boats.zip": (zipped("1.png"), "The folder my boats.zip has no class folders"),  # photos, no class folder
        "kayaks.zip": (zipped("kayak/1.png", "kayak/2.png"), "The folder kayaks.zip has only one class (kayak)"),
        "broken.zip": (b"PK\x03\x04 not really a zip", "broken.zip is not a zip or tar archive"),
    }
    for name, (content, sentence) in cases.items():
        path = limits.save_upload(content, name)
        with pytest.raises(data.DatasetError) as error:
            transfer.load_images(transfer.TransferConfig(data=str(path), image_size=32))
        message = str(error.value)
        assert message.startswith(sentence), message
        assert str(limits.cache_root()) not in message and path.parent.name not in message


def test_disk_budget_removes_the_least_recently_used_first(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))  # its own cache: the test workers share their decoded arrays
    old = limits.save_upload(os.urandom(300_000), "old.zip")
    os.utime(old.parent, (1, 1))  # long unused (an upload's folder, filed by its content, is what the budget sees)
    new = limits.save_upload(os.urandom(300_000), "new.zip")
    total = sum(f.stat().st_size for folder in limits.BUDGETED for f in (limits.cache_root() / folder).rglob("*")
                if f.is_file())
    removed = limits.enforce_disk_budget(budget_bytes=total - 1, keep=new)
    assert removed == [old.parent] and not old.exists() and new.exists()


def test_the_disk_budget_skips_what_another_process_removed_meanwhile(monkeypatch, tmp_path):
    """The apps of a shared server share one cache: an entry listed and then removed by another app (its stale
    arrays replaced) is skipped, not a FileNotFoundError for whoever uploads next."""
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    old = limits.save_upload(os.urandom(300_000), "old.zip")
    os.utime(old.parent, (1, 1))
    new = limits.save_upload(os.urandom(300_000), "new.zip")
    gone = tmp_path / "datasets" / "folder-photos-0123456789abcdef.npz"  # listed, then removed by another app
    iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: [*iterdir(self), *([gone] if self.name == "datasets" else [])])
    (tmp_path / "datasets").mkdir()
    assert limits.enforce_disk_budget(budget_bytes=400_000, keep=new) == [old.parent] and new.exists()


def _tar(path, add) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("photos/a/1.png")
        png = io.BytesIO()
        Image.new("RGB", (4, 4)).save(png, "PNG")
        info.size = len(png.getvalue())
        tar.addfile(info, io.BytesIO(png.getvalue()))
        add(tar)


@pytest.mark.parametrize("kind", ["symlink", "hard link", "fifo", "device"])
def test_tar_with_links_or_special_files_is_refused_and_leaves_nothing(tmp_path, kind):
    def add(tar):
        info = tarfile.TarInfo(f"photos/b/{kind.replace(' ', '_')}")
        info.type = {"symlink": tarfile.SYMTYPE, "hard link": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
                     "device": tarfile.CHRTYPE}[kind]
        info.linkname = "/etc/passwd" if "link" in kind else ""
        tar.addfile(info)

    archive = tmp_path / f"{kind.replace(' ', '_')}.tar.gz"
    _tar(archive, add)
    extracted = limits.cache_root() / "extracted"
    before = set(extracted.iterdir()) if extracted.exists() else set()
    with pytest.raises(data.DatasetError, match="holds a (link|special file)") as error:
        data.extract_archive(archive)
    assert str(error.value).endswith("so it was not used.")
    assert set(extracted.iterdir()) == before  # no partial folder


def test_a_damaged_archive_is_one_sentence(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    _tar(archive, lambda tar: None)
    archive.write_bytes(archive.read_bytes()[:60])
    with pytest.raises(data.DatasetError, match="damaged or cannot be read|not a zip or tar archive"):
        data.extract_archive(archive)


def test_two_cache_writers_at_once_and_a_corrupt_cache_file(tmp_path):
    from tests.helpers import noise_folder

    noise_folder(tmp_path / "photos", ["cats", "dogs"], per_class=6)
    errors, results = [], []

    def load():
        try:
            results.append(data.load_folder(tmp_path / "photos", size=8))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 8
    cache_file = next((limits.cache_root() / "datasets").glob("folder-photos-*.npz"))
    cache_file.write_bytes(b"not a zip at all")  # a cache file cut short or corrupted
    again = data.load_folder(tmp_path / "photos", size=8)
    assert torch.equal(again.splits["train"].images, results[0].splits["train"].images)
    assert cache_file.stat().st_size > 100  # rebuilt


def test_palette_png_bomb_is_decoded_without_a_memory_blow_up(tmp_path):
    """A 6000x6000 palette PNG is a few kB; decoding it used to take about 700 MB (three 4-byte copies)."""
    path = tmp_path / "bomb.png"
    Image.new("P", (6000, 6000), 1).save(path, optimize=True)
    assert path.stat().st_size < 100_000
    probe = ("import resource, sys; from cnn_lab import images; before = resource.getrusage(resource.RUSAGE_SELF)"
             ".ru_maxrss; loaded = images.load_image(open(sys.argv[1], 'rb').read()); print(loaded.image.size, "
             "(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)")
    out = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=ROOT, capture_output=True, text=True, check=True)
    size, peak_mib = out.stdout.rsplit(" ", 1)
    assert size.startswith("(512, 512)")
    assert int(peak_mib) < 250, out.stdout  # 36 MB of palette + 108 MB of RGB, nothing more


def test_step_metrics_stay_bounded():
    log = MetricLog(max_steps=1000)
    for start in range(0, 100_000, 50):
        log.add_steps([(step, 1.0 / (step + 1), 0.1) for step in range(start + 1, start + 51)])
    steps = log.snapshot().steps
    assert len(steps) <= 1000 and steps[-1][0] >= 99_000 - log.stride  # the whole run, thinned
    assert steps[0][0] <= 2 * log.stride and log.stride == 128


def test_pace_follows_the_recent_speed():
    from cnn_lab.metrics import Pace

    pace = Pace()
    assert pace.eta(10, 110, elapsed=10.0) == pytest.approx(100)  # no recent pace yet: the average, 1 step/s
    for second in range(0, 41, 2):  # 10 steps/s from now on, after a slow start
        pace.update(10 + 10 * second, 10.0 + second)
    assert pace.eta(410, 1410, elapsed=50.0) == pytest.approx(100, rel=0.05)  # not the average's 121 s
