"""This machine's Dagster instance as the CLI writes it (``dagster_home``)."""

from __future__ import annotations

import dagster as dg

from protiv_dagster.cli.common import EARLIER_LAPTOP_INSTANCE, LAPTOP_INSTANCE, dagster_home


def test_the_laptops_instance_takes_a_run_launched_in_the_ui_out_of_the_queue_within_a_second(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    home = dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.run_coordinator.dequeue_interval_seconds == 1


def test_an_instance_an_earlier_version_wrote_is_rewritten_and_one_edited_by_hand_is_kept(tmp_path, monkeypatch):
    earlier, edited = tmp_path / "earlier", tmp_path / "edited"
    for home, text in ((earlier, EARLIER_LAPTOP_INSTANCE), (edited, EARLIER_LAPTOP_INSTANCE + "# mine\n")):
        home.mkdir()
        (home / "dagster.yaml").write_text(text)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        dagster_home()
    assert (earlier / "dagster.yaml").read_text() == LAPTOP_INSTANCE
    assert (edited / "dagster.yaml").read_text() == EARLIER_LAPTOP_INSTANCE + "# mine\n"
