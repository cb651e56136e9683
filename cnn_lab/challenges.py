"""Challenges: a teacher turns a practical into a friendly competition, as Kaggle's in-class competitions do.

An admin makes a challenge: a dataset, its rules (parameters, epochs, training minutes, models, entries a day) and a
closing time. A learner enters a finished run of their own, trained here (an imported file is refused); its config
and record are checked against the rules (one sentence a broken rule), and the server scores it itself, from the
run's saved weights on the dataset's test split, never from the run's record. The leaderboard ranks by score, then
fewer parameters, then the earlier entry.

As in Kaggle's in-class competitions, the test split is cut in two halves, fixed by the challenge's id: until the
close the board shows each entry's score on the public half; the hidden half's scores are kept on the server and
rank the board from the close on. So a class that tunes to the public scores (few entries a day limit that too)
meets its real ranking at the close.

Each challenge is one JSON file in the runs folder (`challenges/<id>.json`), with its entries; every change is a
read-modify-write under a file lock, written atomically, so twenty learners entering at once lose nothing and a
restart loses nothing.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from filelock import FileLock

from cnn_lab import runs
from cnn_lab.data import DATASETS, DatasetError, DatasetUnavailable
from cnn_lab.identity import Person
from cnn_lab.limits import in_data_folder

FOLDER = "challenges"


class ChallengeError(ValueError):
    """Something a challenge does not allow; the message is one sentence (one a broken rule)."""


@dataclass(frozen=True)
class Rules:
    max_parameters: int = 100_000
    max_epochs: int = 5
    max_minutes: float = 30.0
    models: tuple[str, ...] = ()  # the allowed model names (ModelSpec.name); empty: any
    entries_per_day: int = 5  # one person's entries in any 24 hours


@dataclass(frozen=True)
class Entry:
    person: str
    run_id: str
    score: float  # accuracy on the public half of the test split, computed by the server from the run's weights
    parameters: int
    minutes: float
    entered: float
    hidden_score: float | None = None  # on the hidden half: shown from the close on (None: entered before halves)

    def ranked_by(self, revealed: bool) -> float:
        return self.hidden_score if revealed and self.hidden_score is not None else self.score


@dataclass(frozen=True)
class Challenge:
    id: str
    title: str
    dataset: str  # a registry name, or a folder inside CNN_LAB_DATA (its split is seeded, so fixed)
    rules: Rules
    closes: float  # a time.time(); entries after it are refused
    created_by: str
    closed: bool = False  # the teacher closed it early
    hide_names: bool = False  # the leaderboard says "learner 3" instead of names
    entries: tuple[Entry, ...] = field(default_factory=tuple)

    @property
    def open(self) -> bool:
        return not self.closed and time.time() < self.closes

    @property
    def revealed(self) -> bool:
        """Whether the hidden half's scores rank the board: from the close on."""
        return not self.open

    def leaderboard(self) -> list[tuple[int, str, Entry]]:
        """(rank, shown name, entry), each person's best entry, best first: the score (the public half's while
        open, the hidden half's from the close), then fewer parameters, then the earlier entry."""
        best: dict[str, Entry] = {}
        for entry in sorted(self.entries, key=lambda e: (-e.ranked_by(self.revealed), e.parameters, e.entered)):
            best.setdefault(entry.person, entry)
        ranked = list(best.values())
        numbers = {p: i + 1 for i, p in enumerate(dict.fromkeys(e.person for e in sorted(self.entries,
                                                                                          key=lambda e: e.entered)))}
        return [(rank, f"learner {numbers[e.person]}" if self.hide_names else e.person, e)
                for rank, e in enumerate(ranked, start=1)]


# The course's own practical: its CNN reached 59% on CIFAR-10 in 5 epochs (lesson 26).
COURSE = dict(title="Course CNN: beat 59% on CIFAR-10 with at most 100k parameters in at most 5 epochs",
              dataset="cifar10", rules=Rules(max_parameters=100_000, max_epochs=5, max_minutes=30.0, entries_per_day=5))


def _folder() -> Path:
    folder = runs.runs_root() / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _load(path: Path) -> Challenge:
    raw = json.loads(path.read_text())
    return Challenge(**raw | {"rules": Rules(**raw["rules"] | {"models": tuple(raw["rules"]["models"])}),
                              "entries": tuple(Entry(**e) for e in raw["entries"])})


def _save(challenge: Challenge) -> None:
    runs.write_json(_folder() / f"{challenge.id}.json", asdict(challenge))


def list_challenges() -> list[Challenge]:
    """Every challenge, newest first: its own file only, not a temporary copy being written (a hidden `.tmp`
    file), and each id once."""
    found: dict[str, Challenge] = {}
    for path in sorted(_folder().glob("*.json"), reverse=True):
        if path.name.startswith("."):
            continue
        try:
            challenge = _load(path)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours
        if challenge.id == path.stem:
            found.setdefault(challenge.id, challenge)
    return list(found.values())


def get(challenge_id: str) -> Challenge:
    path = _folder() / f"{challenge_id}.json"
    if not challenge_id.isalnum() or not path.exists():
        raise ChallengeError(f"There is no challenge {challenge_id!r}.")
    return _load(path)


def _admin(person: Person, verb: str) -> None:
    if not person.admin:
        raise ChallengeError(f"Only a teacher (an admin) can {verb} a challenge.")


def create(person: Person, title: str, dataset: str, rules: Rules, minutes_open: float) -> Challenge:
    _admin(person, "create")
    if not title.strip():
        raise ChallengeError("Give the challenge a title.")
    if dataset not in DATASETS:  # a folder: the teacher's own data, never a person's upload
        path = Path(dataset).expanduser().resolve()
        if not (path.is_dir() and in_data_folder(path)):
            raise ChallengeError(f"{dataset} is neither a dataset of the list nor a folder inside CNN_LAB_DATA.")
        dataset = str(path)
    challenge = Challenge(f"{time.time_ns()}{secrets.token_hex(2)}", title.strip(), dataset, rules,
                          time.time() + minutes_open * 60, person.name)
    _save(challenge)
    return challenge


def _change(challenge_id: str, change) -> Challenge:
    """Read, change and write one challenge under its lock: concurrent entries all land."""
    with FileLock(_folder() / f".{challenge_id}.lock"):
        changed = change(get(challenge_id))
        _save(changed)
        return changed


def set_state(person: Person, challenge_id: str, closed: bool | None = None,
              hide_names: bool | None = None) -> Challenge:
    """Close (or reopen) a challenge, hide (or show) its names: a teacher's."""
    _admin(person, "close or change")
    return _change(challenge_id, lambda c: replace(c, closed=c.closed if closed is None else closed,
                                                   hide_names=c.hide_names if hide_names is None else hide_names))


def broken_rules(challenge: Challenge, record: runs.RunRecord, parameters: int | None = None) -> list[str]:
    """One sentence for each rule the run breaks (empty: it may enter); the parameters once they are counted."""
    rules, config = challenge.rules, record.config
    minutes = sum(e.seconds for e in record.epochs) / 60
    model = config.get("model", {}).get("name", "")
    problems = [
        (record.imported, "It was imported from a file, not trained on this server, so its rules cannot be checked."),
        (not record.imported and (record.kind != "train" or config.get("dataset") != challenge.dataset),
         f"It was trained on {config.get('dataset') or config.get('data')}, not on {challenge.dataset}."),
        (record.status != "finished", f"It has not finished (it is {record.status})."),
        (parameters is not None and parameters > rules.max_parameters,
         f"It has {parameters or 0:,} parameters, more than {rules.max_parameters:,}."),
        (max(len(record.epochs), config.get("epochs", 0)) > rules.max_epochs,
         f"It trains {max(len(record.epochs), config.get('epochs', 0))} epochs, more than {rules.max_epochs}."),
        (minutes > rules.max_minutes, f"It trained for {minutes:.1f} minutes, more than {rules.max_minutes:g}."),
        (bool(rules.models) and model not in rules.models,
         f"Its model is {model}; this challenge allows {', '.join(rules.models)}."),
    ]
    return [sentence for broken, sentence in problems if broken]


@dataclass(frozen=True)
class Score:
    public: float  # accuracy on the public half of the test split
    hidden: float  # on the hidden half
    parameters: int


def halves(challenge_id: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images' indices cut in two, public and hidden, by a permutation seeded with the challenge's id:
    the same halves for every entry and after a restart, other halves in another challenge."""
    seed = int(hashlib.sha256(challenge_id.encode()).hexdigest()[:15], 16)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[:count // 2], order[count // 2:]


def score(record: runs.RunRecord, challenge: Challenge) -> Score:
    """The run's saved weights on the challenge dataset's test split, computed here, on each half."""
    from cnn_lab.data import load_dataset
    from cnn_lab.models import count_parameters
    from cnn_lab.normalise import normalise
    from cnn_lab.subjects import run_subject

    subject = run_subject(record)
    test = load_dataset(challenge.dataset).splits["test"]
    right = []
    with torch.inference_mode():
        for start in range(0, len(test.labels), 1000):
            logits = subject.model(normalise(test.images[start:start + 1000], subject.mean, subject.std))
            right.append(logits.argmax(1) == test.labels[start:start + 1000])
    correct = torch.cat(right).float()
    public, hidden = halves(challenge.id, len(correct))
    return Score(float(correct[public].mean()), float(correct[hidden].mean()), count_parameters(subject.model))


def _check_entries_today(challenge: Challenge, person: Person) -> None:
    day_ago = time.time() - 24 * 3600
    today = [e for e in challenge.entries if e.person == person.name and e.entered > day_ago]
    if len(today) >= challenge.rules.entries_per_day:
        again = time.strftime("%a %H:%M", time.localtime(min(e.entered for e in today) + 24 * 3600))
        runs_word = "run" if len(today) == 1 else "runs"
        raise ChallengeError(f"You have entered {len(today)} {runs_word} in the last 24 hours, the most this "
                             f"challenge allows; you can enter again from {again}.")


def enter(person: Person, challenge_id: str, run_id: str) -> Entry:
    """Enter a finished run of `person`'s own; ChallengeError with one sentence a broken rule otherwise."""
    challenge = get(challenge_id)
    if not challenge.open:
        raise ChallengeError(f"The challenge \"{challenge.title}\" is closed.")
    record = runs.load_run(run_id)
    if record.owner != person.name:
        raise ChallengeError("You can enter only a run of your own.")
    _check_entries_today(challenge, person)  # before the scoring's work
    problems = broken_rules(challenge, record)
    if not problems:  # the model fits the dataset: score it, and count its parameters
        try:
            scored = score(record, challenge)
        except (DatasetUnavailable, DatasetError) as error:
            raise ChallengeError(f"This server cannot score entries now: {error}") from None
        problems = broken_rules(challenge, record, scored.parameters)
    if problems:
        raise ChallengeError(" ".join(problems))
    entry = Entry(person.name, run_id, scored.public, scored.parameters,
                  round(sum(e.seconds for e in record.epochs) / 60, 2), time.time(), scored.hidden)

    def add(current: Challenge) -> Challenge:
        if any(e.run_id == run_id for e in current.entries):
            raise ChallengeError("This run has already been entered.")
        _check_entries_today(current, person)  # again under the lock: two tabs entering at once
        return replace(current, entries=current.entries + (entry,))

    _change(challenge_id, add)
    return entry
