"""One learner's bomb against everyone else's pages (issue 55): a class server started as README says (shared mode,
an admin password), in headless Chromium. Ben moves a slider on the stride & padding page and times each move until
his page is idle (tests/bench/latency.py's measure), first on a quiet server, then while Ada's transfer page uploads
each bomb of the issue, one after another, as fast as her page takes them. Ada's own wait for her sentence is timed
too. The figures say whether a bomb costs the others anything; the tests (tests/test_hostile.py) say that each is
refused."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from cnn_lab import data as datasets
from tests.bench.common import Row, median
from tests.bench.latency import WATCH, Move, slider, timed
from tests.helpers import empty_zip, tar_bomb
from tests.launch import launch_chromium, start_app, stop_app

BENS_MOVE = Move("stride_padding", "Input height slider", *slider("Input height"))


def bombs(folder: Path) -> dict[str, Path]:
    """The uploads a hostile learner tries on the transfer page (which takes .zip files)."""
    made = {"a bzip2 tar of 600,000 empty members, named photos.zip": folder / "tar" / "photos.zip",
            "a zip declaring 200,000 empty members": folder / "many" / "photos.zip",
            "a zip of 10,001 empty members (one over the images an upload may bring)": folder / "over" / "photos.zip"}
    for path in made.values():
        path.parent.mkdir()
    tar_bomb(made["a bzip2 tar of 600,000 empty members, named photos.zip"], 600_000)
    empty_zip(made["a zip declaring 200,000 empty members"], 200_000)
    empty_zip(made["a zip of 10,001 empty members (one over the images an upload may bring)"], 10_001)
    return made


def upload(page, url: str, key: str, path: Path) -> None:
    """Ada's upload on a fresh visit of her transfer page (a new session: nothing of the last try is kept)."""
    page.goto(f"{url}/transfer?who={key}")
    page.get_by_text("Upload a zip").first.click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(path))


def her_sentence(page) -> str:
    error = page.locator('[data-testid="stAlertContentError"]').first
    error.wait_for(timeout=600_000)
    return error.inner_text()


def bench_hostile(cifar: datasets.ImageDataset, quick: bool) -> list[Row]:
    from playwright.sync_api import sync_playwright

    from cnn_lab.identity import People

    repeats = 5 if quick else 10
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        env = {"CNN_LAB_SHARED": "1", "CNN_LAB_ADMIN_PASSWORD": "bench", "CNN_LAB_CACHE": str(cache)}
        made = bombs(Path(scratch))
        cache.mkdir()
        ada_key = People(cache / "people.json").claim("Ada")[1]  # her name, in the server's own list
        process, url = start_app(env, log="bench-hostile.log")
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                ben, ada = browser.new_page(), browser.new_page()
                ben.add_init_script(WATCH)
                ben.goto(f"{url}/{BENS_MOVE.page}")
                ben.get_by_label("Input height").first.wait_for()
                quiet = [timed(ben, BENS_MOVE, i) for i in range(repeats)]
                rows = [Row("Ben's slider move, quiet server", f"median {median(quiet):.2f} s",
                            f"worst {max(quiet):.2f} s of {repeats}")]
                for what, path in made.items():
                    start = time.perf_counter()
                    upload(ada, url, ada_key, path)
                    sentence = her_sentence(ada)
                    refused = time.perf_counter() - start  # alone: her visit, the upload and the refusal
                    upload(ada, url, ada_key, path)  # again, and Ben moves while the server takes it
                    during = [timed(ben, BENS_MOVE, i) for i in range(repeats)]
                    her_sentence(ada)
                    rows.append(Row(f"Ada uploads {what}", f"her page's sentence in {refused:.1f} s; Ben's move: "
                                    f"median {median(during):.2f} s, worst {max(during):.2f} s",
                                    f"{path.stat().st_size / 1e3:,.0f} kB; her page: \"{sentence[:100]}\""))
                browser.close()
        finally:
            stop_app(process)
    return rows
