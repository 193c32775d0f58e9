"""This machine's Dagster instance as the CLI writes it (``dagster_home``)."""

from __future__ import annotations

import dagster as dg
import sqlalchemy
from dagster._core.storage.event_log.sqlite import ConsolidatedSqliteEventLogStorage, SqliteEventLogStorage
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager

from protiv_dagster.cli import common
from protiv_dagster.cli.common import EARLIER_LAPTOP_INSTANCE, LAPTOP_INSTANCE, dagster_home
from protiv_dagster.laptop_storage import LaptopEventLogStorage


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


def test_the_laptops_instance_captures_no_compute_logs_and_an_instance_written_with_capture_is_upgraded(
    tmp_path, monkeypatch
):
    """No `tail` processes swapped in for a run's stdout and stderr, as in the Kubernetes deployment;
    a home the version before wrote (capturing them) is rewritten, one edited by hand is kept."""
    written_before = common._SETTINGS_BEFORE_NO_CAPTURE + common._DAGSTERS_ONE_EVENT_LOG
    homes = {"new": None, "before": written_before, "edited": written_before + "# mine\n"}
    for name, text in homes.items():
        home = tmp_path / name
        home.mkdir()
        if text is not None:
            (home / "dagster.yaml").write_text(text)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        dagster_home()
    for name in ("new", "before"):
        assert (tmp_path / name / "dagster.yaml").read_text() == LAPTOP_INSTANCE
        with dg.DagsterInstance.from_config(str(tmp_path / name)) as instance:
            assert isinstance(instance.compute_log_manager, NoOpComputeLogManager)
            assert isinstance(instance.event_log_storage, LaptopEventLogStorage)
            run_id = say_hello.execute_in_process(instance=instance).run_id
            assert any(e.dagster_event and e.dagster_event.is_successful_output for e in instance.all_logs(run_id))
    assert (tmp_path / "edited" / "dagster.yaml").read_text() == written_before + "# mine\n"
    # A home with per-run event files of the version before keeps them, and loses the capture.
    per_run = tmp_path / "per-run"
    per_run.mkdir()
    (per_run / "dagster.yaml").write_text(common._SETTINGS_BEFORE_NO_CAPTURE)
    monkeypatch.setenv("DAGSTER_HOME", str(per_run))
    dagster_home()
    with dg.DagsterInstance.from_config(str(per_run)) as instance:
        assert isinstance(instance.compute_log_manager, NoOpComputeLogManager)
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
        assert not isinstance(instance.event_log_storage, ConsolidatedSqliteEventLogStorage)


@dg.op
def hello() -> str:
    return "hello"


@dg.job
def say_hello():
    hello()


def test_a_new_laptop_keeps_every_runs_events_in_one_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    home = dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, LaptopEventLogStorage)
        runs = [say_hello.execute_in_process(instance=instance).run_id for _ in range(2)]
    assert (home / "event_log.db").is_file() and not (home / "history" / "runs").exists()
    # Another process (the webserver) reads both runs' events from the same file.
    with dg.DagsterInstance.from_config(str(home)) as webserver:
        for run_id in runs:
            assert any(
                e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_SUCCESS
                for e in webserver.all_logs(run_id)
            )


def test_a_laptop_with_runs_of_an_earlier_version_keeps_their_events(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(EARLIER_LAPTOP_INSTANCE)
    with dg.DagsterInstance.from_config(str(home)) as earlier:
        before = say_hello.execute_in_process(instance=earlier).run_id
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)  # the per-run files, as before
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert len(instance.all_logs(before)) > 5


def test_the_event_log_compiles_its_statements_once_and_reads_what_dagsters_own_storage_wrote(tmp_path, monkeypatch):
    """The laptop's event log keeps one SQLAlchemy engine (Dagster's builds one per connection, and
    compiles every statement again); a home the version before wrote is upgraded to it, and the runs
    recorded before are read from the same file."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(common._LAPTOP_SETTINGS + common._DAGSTERS_ONE_EVENT_LOG)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as before:
        assert type(before.event_log_storage) is ConsolidatedSqliteEventLogStorage
        earlier_run = say_hello.execute_in_process(instance=before).run_id
    dagster_home()
    assert (home / "dagster.yaml").read_text() == LAPTOP_INSTANCE

    engines: set[int] = set()

    def seen(connection: sqlalchemy.Connection) -> None:
        if str(connection.engine.url).endswith("event_log.db"):
            engines.add(id(connection.engine))

    sqlalchemy.event.listen(sqlalchemy.Engine, "engine_connect", seen)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.event_log_storage, LaptopEventLogStorage)
            run_id = say_hello.execute_in_process(instance=instance).run_id
            assert instance.get_run_by_id(run_id).is_success
            events = instance.all_logs(run_id) + instance.all_logs(earlier_run)
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "engine_connect", seen)
    # Every event of the run (a dozen connections at least) went through the one engine.
    assert len(engines) == 1, f"{len(engines)} engines"
    for run in (run_id, earlier_run):
        assert any(e.run_id == run and e.dagster_event and e.dagster_event.is_successful_output for e in events)
