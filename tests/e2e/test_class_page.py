"""The class page in real browsers (issue 34): a teacher makes a challenge, two learners enter their runs, and the
leaderboard updates on the other learners' pages without a reload. Screenshots: test-artifacts/class-*.png."""
from cnn_lab import jobs
from cnn_lab.identity import Person
from cnn_lab.models import ModelSpec
from cnn_lab.train import TrainConfig
from tests.e2e.helpers import choose, no_exception, screenshot, wait_idle
from tests.e2e.test_shared_server import _join
from tests.helpers import wait_for
from tests.launch import start_app


def _key(page) -> str:
    return page.url.split("who=")[1].split("&")[0]


def _board(page) -> str:
    tables = page.locator('[data-testid="stTable"]')
    return tables.last.inner_text() if tables.count() else ""


def test_the_leaderboard_updates_on_every_open_page(browser, tmp_path, monkeypatch):
    cache = tmp_path / "cache"  # its own people, runs and challenges
    process, url = start_app({"CNN_LAB_SHARED": "1", "CNN_LAB_ADMIN_PASSWORD": "s3cret", "CNN_LAB_CACHE": str(cache)},
                             log="class-page.log")
    contexts, pages = [], {}
    try:
        for name, password in (("Teacher", "s3cret"), ("Ada", ""), ("Ben", "")):
            context, pages[name] = _join(browser, url, name, password)
            contexts.append(context)
        monkeypatch.setenv("CNN_LAB_CACHE", str(cache))  # each learner's finished run, in the server's runs folder
        for name, widths in (("Ada", [8, 16]), ("Ben", [4, 8])):
            job = jobs.JobManager().submit(TrainConfig(dataset="digits", model=ModelSpec("cnn", widths=widths),
                                                       epochs=3, batch_size=64, device="cpu"), owner=Person(name))
            job.thread.join(120)
            assert job.status == "finished", job.message

        teacher = pages["Teacher"]
        teacher.goto(f"{url}/class?who={_key(teacher)}")
        teacher.get_by_text("Create a challenge").click()
        teacher.get_by_label("Title", exact=True).fill("Digits in 3 epochs")
        choose(teacher, "Dataset (its test split scores every entry)", "digits")
        epochs = teacher.get_by_label("Max epochs", exact=True)
        epochs.fill("3")
        epochs.press("Enter")
        wait_idle(teacher)
        teacher.get_by_role("button", name="Create the challenge").click()
        teacher.wait_for_selector('text=Challenge "Digits in 3 epochs" is open until', timeout=60_000)

        for name in ("Ada", "Ben"):
            pages[name].goto(f"{url}/class?who={_key(pages[name])}")
            pages[name].wait_for_selector("text=Digits in 3 epochs", timeout=60_000)
            wait_idle(pages[name])
        pages["Ada"].get_by_role("button", name="Enter this run").click()
        pages["Ada"].wait_for_selector("text=Entered: the server scored it", timeout=60_000)
        assert wait_for(lambda: "Ada" in _board(pages["Ben"]), 30), _board(pages["Ben"])  # no reload
        pages["Ben"].get_by_role("button", name="Enter this run").click()
        pages["Ben"].wait_for_selector("text=Entered: the server scored it", timeout=60_000)
        assert wait_for(lambda: "Ben" in _board(pages["Ada"]), 30), _board(pages["Ada"])
        assert wait_for(lambda: "Ada" in _board(teacher) and "Ben" in _board(teacher), 30)
        screenshot(pages["Ada"], "class-learner")
        teacher.reload()
        teacher.wait_for_selector("text=Digits in 3 epochs", timeout=60_000)
        wait_idle(teacher)
        screenshot(teacher, "class-teacher")
        assert all(no_exception(page) for page in pages.values())
    finally:
        for context in contexts:
            context.close()
        process.terminate()
        process.wait(timeout=30)
