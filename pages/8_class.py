"""The class: everyone's runs for a teacher (an admin on a shared server), filtered by person and kind, as CSV too,
with the people who may be stuck flagged; a learner (and the one person of local mode) sees their own runs."""
import time

import pandas as pd
import streamlit as st

from cnn_lab import challenges, classroom, identity, jobs, runs
from cnn_lab.data import DATASETS
from cnn_lab.identity import Person
from cnn_lab.models import MODELS
from cnn_lab.settings import load_settings
from ui.identity import who_is_asking
from ui.nav import page_header


def create_challenge(person: Person) -> None:
    """A teacher's form: the course's own challenge ready to use, or any dataset and rules."""
    with st.expander("Create a challenge", key="class_create_open", on_change="rerun") as box:
        if not box.open:
            return
        course = challenges.COURSE
        title = st.text_input("Title", course["title"], key="class_title")
        datasets = list(DATASETS)
        dataset = st.selectbox("Dataset (its test split scores every entry)", datasets,
                               datasets.index(course["dataset"]), key="class_dataset")
        folder = st.text_input("Or a folder of photos inside CNN_LAB_DATA (its split is seeded: the same every time)",
                               key="class_folder", placeholder="leave empty to use the dataset above")
        a, b, c, d, e = st.columns(5)
        rules = challenges.Rules(
            max_parameters=a.number_input("Max parameters", 1, 100_000_000, course["rules"].max_parameters,
                                          step=10_000, key="class_params"),
            max_epochs=b.number_input("Max epochs", 1, 1000, course["rules"].max_epochs, key="class_epochs"),
            max_minutes=c.number_input("Max training minutes", 1.0, 600.0, course["rules"].max_minutes,
                                       key="class_minutes"),
            entries_per_day=d.number_input("Entries a day", 1, 100, course["rules"].entries_per_day,
                                           key="class_entries"),
            models=tuple(st.multiselect("Allowed models (none chosen: any)", list(MODELS), key="class_models")))
        hours = e.number_input("Open for (hours)", 0.25, 24.0 * 14, 2.0, step=0.25, key="class_hours")
        if st.button("Create the challenge", type="primary"):
            try:
                made = challenges.create(person, title, folder.strip() or dataset, rules, hours * 60)
            except challenges.ChallengeError as error:
                st.error(str(error))
                return
            until = time.strftime("%a %H:%M", time.localtime(made.closes))
            st.success(f"Challenge \"{made.title}\" is open until {until}.")


def delete_runs(person: Person, rows: list[classroom.RunRow]) -> None:
    """A teacher deletes learners' runs for good (a run that is still waiting or training stays, with its sentence):
    what frees a learner's share of the disk when they cannot."""
    with st.popover("Delete runs"):
        chosen = st.multiselect("Runs to delete for good (weights, curves, files)", [row.run for row in rows],
                                key="class_delete_runs")
        if not st.button("Delete them for good", key="class_delete", type="primary", disabled=not chosen):
            return
        for run_id in chosen:
            try:
                jobs.MANAGER.delete_run(run_id, person)
            except (jobs.NotAllowed, *jobs.EXPECTED_ERRORS) as error:
                st.warning(f"Run {run_id}: {error}")
                return
        st.rerun()


def rules_sentence(challenge: challenges.Challenge) -> str:
    rules = challenge.rules
    models = f"; models: {', '.join(rules.models)}" if rules.models else ""
    state = ("open until " + time.strftime("%a %H:%M", time.localtime(challenge.closes)) if challenge.open
             else "closed")
    return (f"On {challenge.dataset}: at most {rules.max_parameters:,} parameters, {rules.max_epochs} epochs and "
            f"{rules.max_minutes:g} minutes of training{models}; {rules.entries_per_day} entries a day. "
            f"{state[0].upper()}{state[1:]}.")


def challenge_panel(person: Person, challenge: challenges.Challenge) -> None:
    """One challenge: its rules, the teacher's switches or the learner's entry, and its live leaderboard."""
    st.markdown(f"**{challenge.title}**")
    st.caption(rules_sentence(challenge))
    if person.admin:
        a, b = st.columns(2)
        hide = a.toggle("Hide names (learner 1, 2, ...)", challenge.hide_names, key=f"class_hide_{challenge.id}")
        if hide != challenge.hide_names:
            challenges.set_state(person, challenge.id, hide_names=hide)
        if challenge.open and b.button("Close the challenge", key=f"class_close_{challenge.id}"):
            challenges.set_state(person, challenge.id, closed=True)
            st.rerun()
    if challenge.open and not (person.admin and load_settings().shared):  # learners (and you, in local mode)
        mine = [r for r in runs.list_runs(kind="train", owner=person.name) if r.usable
                and r.config.get("dataset") == challenge.dataset]
        if not mine:
            st.caption(f"Train a run on {challenge.dataset} within the rules, then enter it here.")
        else:
            run = st.selectbox("Your run", mine, key=f"class_run_{challenge.id}", format_func=lambda r: (
                f"{r.run_id} · {r.label} · test {r.test_acc or 0:.1%}"))
            if st.button("Enter this run", key=f"class_enter_{challenge.id}", type="primary"):
                try:
                    entry = challenges.enter(person, challenge.id, run.run_id)
                    st.success(f"Entered: the server scored it {entry.score:.2%} on the public half of the test "
                               "images. The other half, hidden, ranks the final board at the close.")
                except challenges.ChallengeError as error:
                    st.error(str(error))
    leaderboard(challenge.id)


@st.fragment(run_every=2.0)
def leaderboard(challenge_id: str) -> None:
    """Read again every 2 seconds: an entry on anyone's page shows on every open page."""
    challenge = challenges.get(challenge_id)
    board = challenge.leaderboard()
    if not board:
        st.caption("No entry yet.")
        return
    st.caption("The final ranking, on the hidden half of the test images." if challenge.revealed else
               "Scores on the public half of the test images; the hidden half ranks the final board at the close.")
    st.table(pd.DataFrame([{"rank": rank, "name": name, "score": f"{entry.ranked_by(challenge.revealed):.2%}",
                            "parameters": f"{entry.parameters:,}", "minutes": f"{entry.minutes:.2f}"}
                           for rank, name, entry in board]), hide_index=True)


page_header(__file__)
person = who_is_asking()
shared = load_settings().shared
teacher = shared and person.admin
records = classroom.runs_for(person, shared, live=jobs.MANAGER.live_ids())
st.caption("Every run of the class, newest first: who trained what, how it went, and who may need a hand." if teacher
           else "Your runs, newest first: what you trained and how it went. A teacher sees the whole class here.")

if teacher:
    idle = st.number_input("Flag people with no new run for (minutes)", 5, 240, classroom.IDLE_MINUTES, step=5,
                           key="class_idle")
    stuck = classroom.flags(records, idle_minutes=idle, people=identity.People().learners())
    for flag in stuck:
        st.warning(flag.reason)
    if not stuck:
        st.success("Nobody is flagged: every learner's last run is recent and did not fail.")

rows = [classroom.RunRow.of(record) for record in records]
if not rows:
    st.info("No runs yet: start one on the train or transfer page, and it appears here.")
else:
    left, right = st.columns(2)
    people = sorted({row.person for row in rows})
    chosen_people = left.multiselect("People", people, key="class_people", placeholder="everyone") if teacher else []
    chosen_kinds = (right if teacher else left).multiselect("Kinds", sorted({row.kind for row in rows}),
                                                            key="class_kinds", placeholder="all")
    shown = [row for row in rows if (not chosen_people or row.person in chosen_people)
             and (not chosen_kinds or row.kind in chosen_kinds)]
    st.dataframe(pd.DataFrame([vars(row) for row in shown]), hide_index=True, column_config={
        "best_val_acc": st.column_config.NumberColumn("best val acc", format="percent"),
        "test_acc": st.column_config.NumberColumn("test acc", format="percent"),
        "minutes": st.column_config.NumberColumn("minutes", format="%.2f")})
    st.download_button("Download this table (CSV)", classroom.table_csv(shown), "class-runs.csv", mime="text/csv")
    if teacher:
        delete_runs(person, shown)

# ---------------------------------------------------------------- challenges: a practical as a friendly competition
st.header("Challenges")
st.caption("A challenge sets a dataset and rules; each learner enters a finished run of their own, and the server "
           "scores it itself on the dataset's test images (never from the run's own record): on one half until the "
           "close, and on the other, hidden half from the close on, so that tuning to the shown scores does not pay. "
           "Ties go to fewer parameters, then to the earlier entry.")
if person.admin:
    create_challenge(person)
shown_challenges = challenges.list_challenges()[:5]
if not shown_challenges:
    st.info("No challenge yet." + ("" if person.admin else " Your teacher makes them."))
for challenge in shown_challenges:
    with st.container(border=True):
        challenge_panel(person, challenge)
