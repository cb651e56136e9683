"""Challenges (issue 34): a teacher makes one, learners enter their own finished runs that meet its rules, the
server scores each from the run's saved weights (equal to the run's own test accuracy on the same split), the
leaderboard ranks them, and twenty learners entering at once lose nothing."""
import json
import shutil
import threading

import pytest

from cnn_lab import challenges, jobs, runs
from cnn_lab.challenges import ChallengeError, Rules
from cnn_lab.data import load_dataset
from cnn_lab.identity import Person
from cnn_lab.models import ModelSpec
from cnn_lab.train import TrainConfig

TEACHER, ADA, BEN = Person("teacher", admin=True), Person("ada"), Person("ben")
RULES = Rules(max_parameters=20_000, max_epochs=3, max_minutes=5, models=("cnn",))


@pytest.fixture(scope="module")
def digits_run(lab_cache) -> runs.RunRecord:
    """Ada's small CNN, 3 epochs on the built-in digits."""
    job = jobs.JobManager(max_running=1).submit(
        TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=[8, 16]), epochs=3, batch_size=64, device="cpu"),
        owner=ADA)
    job.thread.join(timeout=300)
    assert job.status == "finished", job.message
    return runs.load_run(job.run_id)


def _copy_for(record: runs.RunRecord, owner: str) -> str:
    """The same run, as another learner's (the same weights: a fair tie)."""
    run_id = runs.new_run_id()
    shutil.copytree(record.path, runs.runs_root() / run_id)
    status = runs.runs_root() / run_id / "status.json"
    runs.write_json(status, json.loads(status.read_text()) | {"owner": owner})
    return run_id


def test_only_a_teacher_creates_and_closes_and_the_rules_are_checked(digits_run):
    with pytest.raises(ChallengeError, match="^Only a teacher \\(an admin\\) can create a challenge.$"):
        challenges.create(ADA, "Mine", "digits", RULES, 60)
    challenge = challenges.create(TEACHER, "Digits: the best small CNN", "digits", RULES, 60)
    with pytest.raises(ChallengeError, match="^You can enter only a run of your own.$"):
        challenges.enter(BEN, challenge.id, digits_run.run_id)
    strict = challenges.create(TEACHER, "Tiny", "digits", Rules(max_parameters=100, max_epochs=2, models=("mlp",)), 60)
    with pytest.raises(ChallengeError) as broken:
        challenges.enter(ADA, strict.id, digits_run.run_id)
    assert str(broken.value) == ("It trains 3 epochs, more than 2. Its model is cnn; this challenge allows mlp.")
    fewer = challenges.create(TEACHER, "Fewer", "digits", Rules(max_parameters=100), 60)
    with pytest.raises(ChallengeError, match=r"^It has [\d,]+ parameters, more than 100.$"):
        challenges.enter(ADA, fewer.id, digits_run.run_id)
    elsewhere = challenges.create(TEACHER, "CIFAR", "cifar10", RULES, 60)
    with pytest.raises(ChallengeError, match="^It was trained on digits, not on cifar10.$"):
        challenges.enter(ADA, elsewhere.id, digits_run.run_id)
    with pytest.raises(ChallengeError, match="^Only a teacher"):
        challenges.set_state(ADA, challenge.id, closed=True)
    challenges.set_state(TEACHER, challenge.id, closed=True)
    with pytest.raises(ChallengeError, match="is closed.$"):
        challenges.enter(ADA, challenge.id, digits_run.run_id)


def test_the_server_s_score_is_the_run_s_own_test_accuracy(digits_run):
    challenge = challenges.create(TEACHER, "Digits", "digits", RULES, 60)
    entry = challenges.enter(ADA, challenge.id, digits_run.run_id)
    # the two halves of the test images together: the same images right (its record keeps a float32: 1e-6 is far
    # under one image in 359)
    count = len(load_dataset("digits").splits["test"].labels)
    public, hidden = challenges.halves(challenge.id, count)
    assert len(public) + len(hidden) == count and not set(public.tolist()) & set(hidden.tolist())
    together = (entry.score * len(public) + entry.hidden_score * len(hidden)) / count
    assert together == pytest.approx(digits_run.test_acc, abs=1e-6)
    assert entry.score > 0.5 and entry.hidden_score > 0.5
    assert 0 < entry.parameters <= RULES.max_parameters
    with pytest.raises(ChallengeError, match="already been entered"):
        challenges.enter(ADA, challenge.id, digits_run.run_id)


def test_twenty_learners_entering_at_once_lose_nothing_and_ties_go_to_the_earlier(digits_run):
    challenge = challenges.create(TEACHER, "Twenty", "digits", RULES, 60)
    people = [Person(f"learner{i:02d}") for i in range(20)]
    run_ids = {p.name: _copy_for(digits_run, p.name) for p in people}
    start, failures = threading.Barrier(20), []

    def enter(person: Person) -> None:
        start.wait()
        try:
            challenges.enter(person, challenge.id, run_ids[person.name])
        except Exception as error:  # noqa: BLE001 - collected for the assert
            failures.append(error)

    threads = [threading.Thread(target=enter, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    board = challenges.get(challenge.id).leaderboard()
    assert sorted(name for _, name, _ in board) == sorted(run_ids) and [rank for rank, _, _ in board] == list(
        range(1, 21))
    times = [entry.entered for _, _, entry in board]
    assert times == sorted(times)  # the same score and size: the earlier entry ranks higher
    hidden = challenges.set_state(TEACHER, challenge.id, hide_names=True).leaderboard()
    assert {name for _, name, _ in hidden} == {f"learner {i}" for i in range(1, 21)}
    assert challenges.list_challenges()[0].id == challenge.id  # read back from disk, as after a restart


def test_a_challenge_on_a_folder_must_be_inside_the_data_folder(tmp_path, monkeypatch):
    from tests.helpers import noise_folder

    inside = noise_folder(tmp_path / "data" / "boats", ["kayak", "tug"], per_class=6)
    monkeypatch.setenv("CNN_LAB_DATA", str(tmp_path / "data"))
    made = challenges.create(TEACHER, "Boats", str(inside), RULES, 60)
    assert made.dataset == str(inside.resolve())
    outside = noise_folder(tmp_path / "elsewhere", ["kayak", "tug"], per_class=6)
    with pytest.raises(ChallengeError, match="is neither a dataset of the list nor a folder inside CNN_LAB_DATA.$"):
        challenges.create(TEACHER, "Elsewhere", str(outside), RULES, 60)


def test_the_board_shows_each_person_s_best_entry_and_a_dataset_that_is_not_here_is_one_sentence(digits_run,
                                                                                                   monkeypatch):
    from cnn_lab import data

    challenge = challenges.create(TEACHER, "Best of each", "digits", RULES, 60)
    first = challenges.enter(ADA, challenge.id, digits_run.run_id)
    again = _copy_for(digits_run, "ada")
    challenges.enter(ADA, challenge.id, again)  # the same score, later: not her best
    board = challenges.get(challenge.id).leaderboard()
    assert [(rank, name, entry.run_id) for rank, name, entry in board] == [(1, "ada", first.run_id)]

    def missing(name, *args, **kwargs):
        raise data.DatasetUnavailable("digits is not on this machine.")

    monkeypatch.setattr(data, "load_dataset", missing)
    other = challenges.create(TEACHER, "Offline", "digits", RULES, 60)
    with pytest.raises(ChallengeError, match="^This server cannot score entries now: digits is not on this machine.$"):
        challenges.enter(ADA, other.id, again)
