"""The Class page (issue 34, its first part) through AppTest: a teacher sees every person's runs, filters them,
downloads them as CSV, and sees who may be stuck; a learner sees only their own runs."""
import json
import time

import pytest

from cnn_lab import classroom, runs
from cnn_lab.identity import People
from cnn_lab.train import TrainConfig
from tests.helpers import ROOT

PAGE = str(ROOT / "pages/8_class.py")


def _run(owner: str, status: str, minutes_ago: float, kind: str = "train") -> str:
    run_id = runs.new_run_id()
    runs.create_run(run_id, kind, TrainConfig(dataset="digits").to_json(), owner=owner)
    runs.finish_run(run_id, status, "NaN loss at step 3." if status == "failed" else "", 0.9, classes=["a", "b"])
    status_file = runs.runs_root() / run_id / "status.json"  # as if it had started `minutes_ago`
    runs.write_json(status_file, json.loads(status_file.read_text()) | {"created": time.time() - minutes_ago * 60})
    return run_id


def _page(key: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["who"] = key
    return at.run()


@pytest.fixture
def keys(monkeypatch, tmp_path) -> tuple[People, str, str]:
    """A class server of its own, with a teacher and Ada signed up: (the people, the teacher's key, Ada's key)."""
    monkeypatch.setenv("CNN_LAB_SHARED", "1")
    monkeypatch.setenv("CNN_LAB_ADMIN_PASSWORD", "s3cret")
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    people = People()
    return people, people.claim("Teacher", "s3cret", "s3cret")[1], people.claim("Ada")[1]


def test_the_teacher_sees_the_class_and_who_may_be_stuck_a_learner_sees_their_own(keys):
    people, teacher, ada = keys
    people.claim("Ben")
    people.claim("Cy")
    ada_runs = [_run("Ada", "finished", 30), _run("Ada", "finished", 2)]
    _run("Ben", "failed", 1)

    at = _page(teacher)
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["person"]) == ["Ada", "Ada", "Ben"] and list(table["run"])[0] > list(table["run"])[-1]
    assert sorted(w.value for w in at.warning) == ["Ben's last run (" + table["run"][table["person"] == "Ben"].iloc[0]
                                                   + ") failed: NaN loss at step 3.", "Cy has not started a run yet."]
    at.number_input(key="class_idle").set_value(5).run()  # Ada's last run is 2 minutes old: still not flagged
    assert not any(w.value.startswith("Ada") for w in at.warning)
    at.multiselect(key="class_people").set_value(["Ada"]).run()
    assert sorted(at.dataframe[0].value["run"]) == sorted(ada_runs)
    csv = at.get("download_button")[0].proto
    assert csv.label == "Download this table (CSV)"
    assert classroom.table_csv([classroom.RunRow.of(runs.load_run(r)) for r in ada_runs]).startswith(
        "person,run,kind,dataset,model,status,epochs,best_val_acc,test_acc,started,minutes\r\nAda,")

    learner = _page(ada)
    assert not learner.exception and not learner.warning  # no flags for a learner
    assert sorted(learner.dataframe[0].value["run"]) == sorted(ada_runs)  # her own runs, nobody else's
    assert not [m for m in learner.multiselect if m.label == "People"]


def test_flags_are_computed_from_the_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    old, fresh = _run("Dan", "finished", 45), _run("Eve", "finished", 5)
    flagged = classroom.flags([runs.load_run(old), runs.load_run(fresh)], idle_minutes=20)
    assert [f.reason for f in flagged] == ["Dan has started no run for 45 minutes."]


def test_a_teacher_makes_a_challenge_a_learner_enters_and_the_board_shows_it(keys):
    from streamlit.testing.v1 import AppTest

    from cnn_lab import challenges, jobs
    from cnn_lab.identity import Person
    from cnn_lab.models import ModelSpec

    _, teacher, ada = keys
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["who"] = teacher
    at.session_state["class_create_open"] = True
    at.run()
    assert at.text_input(key="class_title").value.startswith("Course CNN: beat 59% on CIFAR-10")  # ready to use
    assert at.selectbox(key="class_dataset").value == "cifar10" and at.number_input(key="class_params").value == 100_000
    at.text_input(key="class_title").input("Digits in 3 epochs").run()
    at.selectbox(key="class_dataset").set_value("digits").run()
    at.number_input(key="class_epochs").set_value(3).run()
    next(b for b in at.button if b.label == "Create the challenge").click().run()
    assert any(s.value.startswith('Challenge "Digits in 3 epochs" is open until') for s in at.success)
    challenge = challenges.list_challenges()[0]

    made = {}
    for epochs in (3, 4):  # one run within the rules, one over them
        job = jobs.JobManager().submit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]),
                                                   epochs=epochs, batch_size=64, device="cpu"), owner=Person("Ada"))
        job.thread.join(120)
        made[epochs] = job.run_id
    learner = _page(ada)
    assert not [b for b in learner.button if b.label == "Create the challenge"]  # not a learner's
    assert not [b for b in learner.button if b.label == "Close the challenge"]
    runs_offered = learner.selectbox(key=f"class_run_{challenge.id}")
    assert len(runs_offered.options) == 2  # her own finished digits runs
    def choose(run_id: str) -> None:
        offered = learner.selectbox(key=f"class_run_{challenge.id}")
        offered.select_index(next(i for i, o in enumerate(offered.options) if o.startswith(run_id))).run()

    choose(made[4])
    next(b for b in learner.button if b.label == "Enter this run").click().run()
    assert [e.value for e in learner.error] == ["It trains 4 epochs, more than 3."]
    choose(made[3])
    next(b for b in learner.button if b.label == "Enter this run").click().run()
    assert any(s.value.startswith("Entered: the server scored it") for s in learner.success), learner.error
    board = learner.table[-1].value
    assert list(board["name"]) == ["Ada"] and list(board["rank"]) == [1] and float(board["score"].iloc[0][:-1]) > 50

    at.run()  # the teacher hides the names; then closes the challenge
    at.toggle(key=f"class_hide_{challenge.id}").set_value(True).run()
    assert list(at.table[-1].value["name"]) == ["learner 1"]
    next(b for b in at.button if b.label == "Close the challenge").click().run()
    assert not challenges.get(challenge.id).open and not at.exception


def test_in_local_mode_you_make_a_challenge_and_enter_your_own_run(monkeypatch, tmp_path):
    from cnn_lab import challenges, jobs
    from cnn_lab.identity import LOCAL
    from cnn_lab.models import ModelSpec

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path))
    job = jobs.JobManager().submit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=2,
                                               batch_size=64, device="cpu"))
    job.thread.join(120)
    made = challenges.create(LOCAL, "Digits", "digits", challenges.Rules(), 60)
    at = _page("")
    assert not at.exception and at.dataframe[0].value["run"].tolist() == [job.run_id]
    next(b for b in at.button if b.label == "Enter this run").click().run()
    assert any(s.value.startswith("Entered: the server scored it") for s in at.success)
    assert [e.person for e in challenges.get(made.id).entries] == ["you"]
