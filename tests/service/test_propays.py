"""A company's ProPays as the integration page reads them, and when it should read them again.

The service's own syncs compute the ProPays and publish the analysts' copy before they are recorded
as finished. The daemon's are recorded first: the automation computes their ProPays and publishes
the copy a tick or two later. The status says when what the page reads was last written
(``propays_as_of``) and whether a succeeded sync's ProPays are still to come (``propays_updating``),
so that the page keeps asking until they are there instead of showing those of before the sync.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from protiv_dagster.sync.company import publish_analysts_copy
from tests.service.conftest import Api

pytestmark = pytest.mark.slow


def status(api: Api, company: str) -> dict:
    answer = api.call("GET", f"/companies/{company}/integration", api.as_admin(company))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_status_says_when_the_propays_were_written_and_whether_a_syncs_are_still_to_come(api: Api):
    company = "bb-propays-as-of"
    connected = api.connect(company, "busybusy")
    assert connected.status_code == 201, connected.text
    [initial] = connected.json()["syncs"]
    assert api.wait_for_sync(company, initial["sync_id"])["status"] == "succeeded"

    synced = status(api, company)
    # The service's sync published the copy before it was recorded as finished.
    assert synced["propays_as_of"] is not None and synced["propays_updating"] is False
    assert datetime.fromisoformat(synced["propays_as_of"]) >= datetime.fromisoformat(initial["requested_at"])

    api.finish_daemon_sync(api.open_daemon_sync(company))
    behind = status(api, company)
    assert behind["last_sync_at"] != synced["last_sync_at"]
    assert behind["propays_as_of"] == synced["propays_as_of"] and behind["propays_updating"] is True

    # The automation's analysts_database, after the engine's run.
    publish_analysts_copy(api.service.defs, api.instance, "automation")
    caught_up = status(api, company)
    assert caught_up["propays_as_of"] > behind["propays_as_of"]
    assert caught_up["propays_updating"] is False and caught_up["last_sync_at"] == behind["last_sync_at"]

    # Only one company's status carries them: the list is read for every company at once.
    listed = api.call("GET", "/companies", api.as_operator()).json()
    [mine] = [s for s in listed if s["company_id"] == company]
    assert mine["propays_as_of"] is None and mine["propays_updating"] is False
