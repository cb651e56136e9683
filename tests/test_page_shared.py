"""Shared mode through AppTest: signing in, your jobs and not others', the queue for everyone; and no traceback
ever reaches the browser."""
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from cnn_lab import jobs
from cnn_lab.identity import People, Person
from tests.helpers import ROOT, use_manager

TRAIN = str(ROOT / "pages/5_train.py")


@pytest.fixture
def shared(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    monkeypatch.setenv("CNN_LAB_ADMIN_PASSWORD", "s3cret")
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    manager = jobs.JobManager()  # this test's own server state, in shared mode
    use_manager(monkeypatch, manager)
    yield manager
    for job in manager.jobs():  # before the cache folder goes away
        if job.alive:
            manager.stop(job, Person("admin", admin=True))
        if job.thread:
            job.thread.join(timeout=60)


def _sign_in(run_page, name: str, password: str = "") -> AppTest:
    at = run_page(TRAIN, opened=("train_settings_open",))  # with its settings opened
    assert at.title[0].value == "Train & watch the loss" and not at.selectbox  # only the form, for now
    at.text_input[0].input(name)
    at.text_input[1].input(password)
    at.button[0].click().run()
    return at


def test_sign_in_then_your_jobs_only(shared, run_page):
    alice = _sign_in(run_page, "alice")
    assert not alice.exception and alice.query_params["who"]
    key = alice.query_params["who"][0] if isinstance(alice.query_params["who"], list) else alice.query_params["who"]
    assert People().by_key(key) == Person("alice")
    alice.selectbox(key="preset").set_value("Digits (seconds, built in)").run()
    alice.number_input(key="Digits (seconds, built in)_epochs").set_value(500).run()
    next(b for b in alice.button if b.label == "Start training").click().run()
    job = shared.latest("train")
    assert job.owner == "alice" and job.status == "running"
    live = json.loads(alice.get("bidi_component")[0].proto.json)  # her live chart follows her job's watch token
    assert live["url"].startswith(f"/cnn-lab/live/{job.watch_token}?")
    bob = _sign_in(run_page, "bob")
    assert any(i.value.startswith("No run yet") for i in bob.info)  # bob's page shows his jobs, not alice's
    assert not bob.get("bidi_component") and job.watch_token not in str([getattr(e, "proto", None) for e in bob.main])
    table = bob.dataframe[0].value  # the queue: everyone sees it
    assert table["who"].tolist() == ["alice"] and table["status"].tolist() == ["running"]
    assert not any(b.label == "Stop this job" for b in bob.button)  # a learner cannot stop others' jobs
    taken = run_page(TRAIN)
    taken.text_input[0].input("Alice")
    taken.button[0].click().run()
    assert "is taken" in taken.error[0].value
    teacher = _sign_in(run_page, "teacher", "s3cret")
    next(b for b in teacher.button if b.label == "Stop this job").click().run()
    job.thread.join(timeout=30)
    assert job.status == "stopped" and job.message.startswith("Stopped by teacher")


def test_no_traceback_reaches_the_browser(monkeypatch, run_page):
    from cnn_lab import kernels

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /srv/cnn_lab/internal.py")

    monkeypatch.setattr(kernels, "make_kernel", broken)
    at = run_page("app.py")
    at.switch_page("pages/1_convolution.py").run()
    assert not at.exception
    message = at.error[0].value
    assert re.search(r"Something went wrong on this page \(error [0-9a-f]{8}\)", message)
    assert "secret detail" not in message and "Traceback" not in message


def test_waits_read_as_people_say_them():
    from cnn_lab.jobs.live import duration

    assert [duration(s) for s in (40, 700, 13_559, 7_199)] == ["40 s", "12 min", "3 h 46 min", "2 h 00 min"]
