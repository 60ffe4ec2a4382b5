"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium loads each page against a live cluster, checks what
it shows and saves a screenshot of it (to ``NEBULA_SCREENSHOT_DIR`` if set, else the test's
temporary folder).

The path a new user takes: submit a job, open the dashboard, click Tasks, click the failed
task: its traceback is on the screen.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the dashboard extra (nebula-core[dashboard]) is needed")
selenium = pytest.importorskip("selenium", reason="selenium drives the browser test")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "headless Chromium is not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import nebula  # noqa: E402
from nebula.job_submission import JobSubmissionClient  # noqa: E402
from nebula.testing import wait_for_condition  # noqa: E402
from nebula.util import state  # noqa: E402
from nebula.util.placement_group import placement_group  # noqa: E402

JOB = """
import nebula
nebula.init()

@nebula.remote
def prepare(i):
    return i * 10

@nebula.remote(max_retries=0)
def load_shard(path):
    raise FileNotFoundError(f"shard {path} is missing from the bucket")

print("prepared", sum(nebula.get([prepare.remote(i) for i in range(20)])))
try:
    nebula.get(load_shard.remote("s3://data/shard-7.parquet"))
except FileNotFoundError as exc:
    print("a shard failed:", exc)
"""


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("NEBULA_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    nebula.init(num_cpus=2, include_dashboard=True)
    try:
        url = nebula.get_runtime_context().dashboard_url
        assert url is not None
        yield url
    finally:
        nebula.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1440,1000", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(browser: Any, css: str, text: str | None = None, timeout: float = 20) -> Any:
    wait = WebDriverWait(browser, timeout)
    if text is not None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def _rows(browser: Any, table: str) -> list[list[str]]:
    """The cells of a table's rows, read in one step (the page redraws every 2 s)."""
    rows: list[list[str]] = browser.execute_script(
        f"return [...document.querySelectorAll('table#{table} tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText))"
    )
    return rows


def _type_filter(browser: Any, table: str, text: str) -> None:
    browser.execute_script(
        f"const box = document.querySelector('input.text-filter[data-table={table}]');"
        "box.value = arguments[0]; box.dispatchEvent(new Event('input', {bubbles: true}));",
        text,
    )


@nebula.remote
class Counter:
    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> int:
        print(f"adding {n}", flush=True)
        self.total += n
        return self.total


def test_a_new_user_finds_a_failed_tasks_traceback_in_two_clicks(
    dashboard: str, browser: Any, screenshots: Path, tmp_path: Path
) -> None:
    (tmp_path / "pipeline.py").write_text(JOB)
    client = JobSubmissionClient(dashboard)
    submission_id = client.submit_job(
        entrypoint="python pipeline.py", runtime_env={"working_dir": str(tmp_path)}
    )
    wait_for_condition(lambda: client.get_job_status(submission_id).is_terminal(), timeout=60)
    assert "a shard failed" in client.get_job_logs(submission_id)
    wait_for_condition(
        lambda: bool(
            state.list_tasks(filters=[("name", "=", "load_shard"), ("state", "=", "FAILED")])
        ),
        timeout=15,
    )

    browser.get(dashboard)
    _wait(browser, "[data-testid=nodes-alive]", "1")
    _wait(browser, "[data-testid=recent-failures]", "load_shard")
    _wait(browser, "[data-testid=chart]")
    browser.save_screenshot(str(screenshots / "01-overview.png"))

    browser.find_element(By.CSS_SELECTOR, "nav a[data-page=tasks]").click()  # click 1
    _wait(browser, "table#tasks", "load_shard")
    browser.save_screenshot(str(screenshots / "02-tasks.png"))
    failed_row = browser.find_element(
        By.XPATH, "//table[@id='tasks']//tr[td[contains(., 'load_shard')]]"
    )
    failed_row.click()  # click 2
    traceback = _wait(browser, "[data-testid=traceback]", "FileNotFoundError")
    assert "shard s3://data/shard-7.parquet is missing" in traceback.text
    assert "Traceback" in traceback.text
    browser.save_screenshot(str(screenshots / "03-failed-task-traceback.png"))

    browser.get(f"{dashboard}/#/jobs")
    _wait(browser, "table#jobs", submission_id)
    browser.save_screenshot(str(screenshots / "04-jobs.png"))
    browser.find_element(
        By.XPATH, f"//table[@id='jobs']//tr[td[contains(., '{submission_id}')]]"
    ).click()
    _wait(browser, "[data-testid=job-logs]", "prepared 1900")
    browser.save_screenshot(str(screenshots / "05-job.png"))


def test_tables_sort_filter_and_update_live(
    dashboard: str, browser: Any, screenshots: Path
) -> None:
    counter = Counter.options(name="live-counter").remote()
    nebula.get([counter.add.remote(n) for n in range(3)])
    group = placement_group([{"CPU": 1}], name="reserved-cpu")
    nebula.get(group.ready(), timeout=30)

    browser.get(f"{dashboard}/#/actors")
    _wait(browser, "table#actors", "live-counter")
    browser.save_screenshot(str(screenshots / "06-actors.png"))

    browser.get(f"{dashboard}/#/tasks")
    _wait(browser, "table#tasks", "Counter.add")
    _type_filter(browser, "tasks", "Counter.add")
    WebDriverWait(browser, 10).until(
        lambda b: (rows := _rows(b, "tasks")) and all("Counter.add" in r[0] for r in rows)
    )
    _type_filter(browser, "tasks", "")
    browser.execute_script("document.querySelector('table#tasks th[data-key=name]').click()")
    WebDriverWait(browser, 10).until(
        lambda b: (
            b.execute_script(
                "return document.querySelector('table#tasks th[data-key=name]').className"
            )
            == "sorted-asc"
        )
    )
    names = [row[0] for row in _rows(browser, "tasks")]
    assert names == sorted(names) and len(set(names)) > 1

    # A call made while the page is open shows up without reloading it.
    browser.execute_script("document.activeElement.blur()")  # typing pauses the refresh
    nebula.get(counter.add.remote(100))
    _wait(browser, "table#tasks", "Counter.add", timeout=5)
    try:
        WebDriverWait(browser, 40).until(
            lambda b: sum(r[0] == "Counter.add" for r in _rows(b, "tasks")) >= 4
        )
    except TimeoutException:
        listed = state.list_tasks(filters=[("name", "=", "Counter.add")])
        live = browser.execute_script("return document.querySelector('#live').textContent")
        pytest.fail(
            f"the page did not show the 4th call: page says {live!r}, its first rows are "
            f"{_rows(browser, 'tasks')[:6]}, the state API lists {len(listed)} calls in "
            f"states {sorted(str(t['state']) for t in listed)} at {time.strftime('%X')}"
        )

    browser.get(f"{dashboard}/#/placement-groups")
    _wait(browser, "table#placement-groups", "reserved-cpu")
    browser.save_screenshot(str(screenshots / "07-placement-groups.png"))

    browser.get(f"{dashboard}/#/logs")
    _wait(browser, ".files", "worker-")
    browser.save_screenshot(str(screenshots / "08-logs.png"))
    actor = state.list_actors(filters=[("name", "=", "live-counter")], detail=True)[0]
    browser.get(f"{dashboard}/#/logs/{actor.node_id}/worker-{actor.pid}.out")
    _wait(browser, "[data-testid=log-text]", "adding 100")
    browser.save_screenshot(str(screenshots / "09-worker-log.png"))
