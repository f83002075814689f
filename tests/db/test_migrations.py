"""Every Alembic revision upgrades from the one before it; the head matches the ORM."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from slurmopt.history import db
from slurmopt.history.orm import Base


def test_revisions_form_one_chain() -> None:
    revs = db.revisions()
    assert len(revs) >= 2
    assert revs[-1] == db.head_revision()
    assert len(set(revs)) == len(revs)


def test_each_revision_upgrades_from_the_previous(db_url: str) -> None:
    engine = db.make_engine(db_url)
    assert db.current_revision(engine) is None
    for rev in db.revisions():
        db.upgrade(engine, rev)
        assert db.current_revision(engine) == rev
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_head_schema_matches_orm(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_data_survives_upgrade_and_new_columns_get_defaults(db_url: str) -> None:
    engine = db.make_engine(db_url)
    first, second = db.revisions()[:2]
    db.upgrade(engine, first)
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO jobs (cluster, job_id, submit_time, name, "user", '
                "allowed_partitions, current_partitions, request, gpus, state, first_seen, "
                "last_seen) VALUES ('c', 7, 100, 'n', 'u', 'a100', 'a100', '{}', 1, 'PENDING', "
                "100, 100)"
            )
        )
    db.upgrade(engine, second)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT job_id, managed FROM jobs")).one()
    assert row[0] == 7
    assert not row[1]


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    db.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    db.require_schema(engine)
