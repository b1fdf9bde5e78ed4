"""A supervisor imports a file from the admin, in headless Chromium, and reads the report."""

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm import imports
from crm.models import Customer, ImportJob
from tests.browser.test_admin_browser import ARTIFACTS, browser, login, roles, shot  # noqa: F401 - fixtures
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FILE = """\
external_ref,display_name,phone,account,tier
C-1,Ada Lovelace,+44 20 7946 0001,AC-1001,vip
C-2,Charles Babbage,(212) 555-0102,AC-1002,standard
C-3,Bad Tier,,AC-1003,platinum
"""


def upload_in_admin(page, base: str, path: Path) -> None:
    """Import jobs -> Add: the file, kind "customers", Save."""
    page.goto(f"{base}/admin/crm/importjob/add/")
    page.set_input_files("#id_upload", str(path))
    page.select_option("#id_kind", "customers")
    page.click("input[name=_save]")


def test_a_supervisor_uploads_a_customer_file_and_reads_the_report(browser, live_server, roles, tmp_path):  # noqa: F811
    UserFactory(username="sofia", first_name="Sofia", role="supervisor", is_staff=True)
    upload = tmp_path / "customers.csv"
    upload.write_text(FILE, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    base = live_server.url

    login(page, base, "sofia")
    upload_in_admin(page, base, upload)

    expect(page.locator("h1")).to_contain_text("View import job")
    job = ImportJob.objects.get()
    assert job.file_name == "customers.csv"
    if job.status == "queued":  # with a broker and no worker in this test, run what the worker would
        imports.import_run(job.pk)
    page.reload()
    expect(page.locator(".field-status")).to_contain_text("Done")
    expect(page.locator(".field-progress")).to_contain_text("3 / 3 rows")
    expect(page.locator(".import-report")).to_contain_text("'platinum' is not a tier")
    shot(page, "admin-import-report")
    assert set(Customer.objects.values_list("external_ref", flat=True)) == {"C-1", "C-2"}

    with page.expect_download() as download:
        page.click("text=Download the rejected lines")
    saved = Path(tmp_path / "errors.csv")
    download.value.save_as(saved)
    assert saved.read_text().splitlines()[1].startswith("C-3,Bad Tier,,AC-1003,platinum,")
    assert ARTIFACTS.joinpath("admin-import-report.png").exists()


def test_a_file_not_utf8_is_refused_and_a_purged_report_explained(browser, live_server, roles, tmp_path):  # noqa: F811
    UserFactory(username="sofia", first_name="Sofia", role="supervisor", is_staff=True)
    excel = tmp_path / "excel.csv"
    excel.write_bytes(FILE.replace("Ada", "Renée").encode("cp1252"))
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    base = live_server.url
    login(page, base, "sofia")

    upload_in_admin(page, base, excel)

    expect(page.locator("#id_upload_error")).to_contain_text("Not UTF-8 text from line 2 on")
    for width in (1400, 1024, 480):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"admin-import-not-utf8-{width}")
    assert ImportJob.objects.count() == 0

    good = tmp_path / "customers.csv"
    good.write_text(FILE, encoding="utf-8")
    upload_in_admin(page, base, good)
    expect(page.locator("h1")).to_contain_text("View import job")
    job = ImportJob.objects.get()
    if job.status == "queued":
        imports.import_run(job.pk)
    ImportJob.objects.filter(pk=job.pk).update(finished_at=job.created_at - dt.timedelta(days=30))
    assert imports.imports_purge() == 1
    page.reload()

    expect(page.locator(".field-report")).to_contain_text("Removed on")
    expect(page.locator(".field-progress")).to_contain_text("3 / 3 rows")
    expect(page.locator("text=Download the rejected lines")).to_have_count(0)
    for width in (1400, 1024, 480):
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"admin-import-purged-{width}")
