"""A maker downloads the results from the manage page, as a person would, and opens the file."""

import csv
import io
import json
import re

from playwright.sync_api import expect

MANAGE = re.compile(r"/poll/(\d+)/manage/[A-Za-z0-9_-]+$")


def test_maker_downloads_results_and_ballots_from_the_manage_page(open_tab):
    maker = open_tab().page
    maker.goto("/poll/new")
    maker.get_by_label("Question").fill("Café or tea?")
    maker.get_by_label("Choice 1", exact=True).fill("Café")
    maker.get_by_label("Choice 2", exact=True).fill("=tea")
    maker.get_by_role("button", name="Create poll", exact=True).click()
    expect(maker).to_have_url(MANAGE)
    question_id = MANAGE.search(maker.url)[1]

    voter = open_tab().page
    voter.goto(maker.get_by_label("Public link: share it with voters").input_value())
    voter.get_by_label("=tea").check()
    voter.get_by_role("button", name="Vote").click()
    expect(voter).to_have_url(re.compile(r"/results$"))

    maker.reload()
    with maker.expect_download() as caught:
        maker.get_by_role("link", name="Results as CSV").click()
    download = caught.value
    # The question as written (filename*), as the person named it.
    assert download.suggested_filename == f"café-or-tea-{question_id}-results.csv"
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert rows == [["choice", "votes", "percent"], ["Café", "0", "0.0"], ["'=tea", "1", "100.0"]]

    with maker.expect_download() as caught:
        maker.get_by_role("link", name="Results as JSON").click()
    document = json.loads(caught.value.path().read_text(encoding="utf-8"))
    assert document["question"] == "Café or tea?" and document["total"] == 1

    with maker.expect_download() as caught:
        maker.get_by_role("link", name="Every ballot as CSV").click()
    ballots = list(csv.reader(io.StringIO(caught.value.path().read_text(encoding="utf-8"))))
    assert [row[0::2] for row in ballots] == [["ballot", "choice"], ["1", "'=tea"]]
    expect(maker).to_have_url(MANAGE)  # a download, not a page change
