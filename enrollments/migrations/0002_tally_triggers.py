"""Triggers that keep `enrollments_enrollmenttally` exact.

Every INSERT, UPDATE and DELETE of enrollments moves the tally's counts in the
same transaction, whoever issues it (set-based enroll, the state machine, a
cascade), so the campaign stats read a few hundred tally rows instead of
aggregating the enrollments themselves.

PostgreSQL: statement-level triggers over transition tables, so a 100,000-row
INSERT … SELECT costs one grouped upsert, not 100,000. Keys are upserted in
key order (no deadlock between two statements touching the same keys); rows
whose count reaches zero are deleted.
"""

from django.db import migrations

NIL = "00000000-0000-0000-0000-000000000000"

KEY = "campaign_id, batch_number, status, smtp_credential_id, has_sent, has_opened, has_replied"


def _key_of(alias: str) -> str:
    return (
        f"{alias}.campaign_id, {alias}.batch_number, {alias}.status, "
        f"COALESCE({alias}.smtp_credential_id, '{NIL}'::uuid), "
        f"{alias}.sent_at IS NOT NULL, {alias}.opened_at IS NOT NULL, {alias}.replied_at IS NOT NULL"
    )


PG_FORWARD = f"""
CREATE FUNCTION enrollments_tally_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    emptied bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH delta AS (
            SELECT {_key_of("r")}, count(*) AS d FROM new_rows r GROUP BY 1, 2, 3, 4, 5, 6, 7
        ), up AS (
            INSERT INTO enrollments_enrollmenttally AS t ({KEY}, n)
            SELECT * FROM delta ORDER BY 1, 2, 3, 4, 5, 6, 7
            ON CONFLICT ({KEY}) DO UPDATE SET n = t.n + EXCLUDED.n
            RETURNING t.id, t.n
        )
        SELECT array_agg(id) FILTER (WHERE n = 0) INTO emptied FROM up;
    ELSIF TG_OP = 'DELETE' THEN
        WITH delta AS (
            SELECT {_key_of("r")}, -count(*) AS d FROM old_rows r GROUP BY 1, 2, 3, 4, 5, 6, 7
        ), up AS (
            INSERT INTO enrollments_enrollmenttally AS t ({KEY}, n)
            SELECT * FROM delta ORDER BY 1, 2, 3, 4, 5, 6, 7
            ON CONFLICT ({KEY}) DO UPDATE SET n = t.n + EXCLUDED.n
            RETURNING t.id, t.n
        )
        SELECT array_agg(id) FILTER (WHERE n = 0) INTO emptied FROM up;
    ELSE
        WITH moves AS (
            SELECT {_key_of("o")}, -1 AS d FROM old_rows o
            UNION ALL
            SELECT {_key_of("r")}, 1 AS d FROM new_rows r
        ), delta AS (
            SELECT c1, c2, c3, c4, c5, c6, c7, sum(d)::bigint
            FROM moves AS x(c1, c2, c3, c4, c5, c6, c7, d)
            GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(d) <> 0
        ), up AS (
            INSERT INTO enrollments_enrollmenttally AS t ({KEY}, n)
            SELECT * FROM delta ORDER BY 1, 2, 3, 4, 5, 6, 7
            ON CONFLICT ({KEY}) DO UPDATE SET n = t.n + EXCLUDED.n
            RETURNING t.id, t.n
        )
        SELECT array_agg(id) FILTER (WHERE n = 0) INTO emptied FROM up;
    END IF;
    IF emptied IS NOT NULL THEN
        DELETE FROM enrollments_enrollmenttally WHERE id = ANY(emptied) AND n = 0;
    END IF;
    RETURN NULL;
END
$$;
--
CREATE TRIGGER enrollments_tally_insert AFTER INSERT ON enrollments_enrollment
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION enrollments_tally_apply();
--
CREATE TRIGGER enrollments_tally_update AFTER UPDATE ON enrollments_enrollment
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION enrollments_tally_apply();
--
CREATE TRIGGER enrollments_tally_delete AFTER DELETE ON enrollments_enrollment
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION enrollments_tally_apply();
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS enrollments_tally_insert ON enrollments_enrollment;
DROP TRIGGER IF EXISTS enrollments_tally_update ON enrollments_enrollment;
DROP TRIGGER IF EXISTS enrollments_tally_delete ON enrollments_enrollment;
DROP FUNCTION IF EXISTS enrollments_tally_apply();
"""


def forward(apps, schema_editor):
    for statement in PG_FORWARD.split("\n--\n"):
        schema_editor.execute(statement)


def reverse(apps, schema_editor):
    for statement in PG_REVERSE.strip().splitlines():
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("enrollments", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forward, reverse),
    ]
