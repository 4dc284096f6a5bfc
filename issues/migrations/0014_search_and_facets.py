"""Full-text search documents and the facet tally (issue 14).

``IssueSearch`` holds each issue's weighted text-search document (GIN-indexed), ``IssueFacetTally`` the number of
issues per (project, status, priority, assignee), both kept by the issue table's triggers. Under a lock that keeps
writers of issues out until the commit, both are filled from the existing issues before the triggers are created,
the GIN index is built after the fill (faster than growing it row by row), and the triggers are made to fire
ALWAYS, as the tally's are (migrations 0009, 0010, 0013).
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


LOCK = "LOCK TABLE issues_issue IN SHARE ROW EXCLUSIVE MODE;"
# The document as the triggers below write it (issues.models.SEARCH_DOCUMENT_SQL, frozen here).
SEARCH_DOCUMENT_SQL = (
    "setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.description, '')), 'B')"
)
FILL = f"""
INSERT INTO issues_issuefacettally (project_id, status, priority, assignee_id, slot, issues)
SELECT project_id, status, priority, coalesce(assignee_id, 0), 0, count(*)
FROM issues_issue GROUP BY 1, 2, 3, 4;
INSERT INTO issues_issuesearch (issue_id, document)
SELECT search_new_rows.id, {SEARCH_DOCUMENT_SQL} FROM issues_issue AS search_new_rows;
"""
TRIGGERS = [
    "facet_insert_de6a7",
    "facet_delete_3e290",
    "facet_update_fce17",
    "facet_truncate_4f168",
    "search_insert_e61a4",
    "search_update_bbf6f",
]
ENABLE_ALWAYS = "".join(f"ALTER TABLE issues_issue ENABLE ALWAYS TRIGGER pgtrigger_{name};" for name in TRIGGERS)


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0013_tally_free_slots"),
    ]

    operations = [
        migrations.CreateModel(
            name="IssueFacetTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("status", models.CharField(max_length=20)),
                ("priority", models.CharField(max_length=10)),
                ("assignee_id", models.BigIntegerField()),
                ("slot", models.SmallIntegerField()),
                ("issues", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="IssueSearch",
            fields=[
                (
                    "issue",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search",
                        serialize=False,
                        to="issues.issue",
                    ),
                ),
                ("document", django.contrib.postgres.search.SearchVectorField()),
            ],
        ),
        migrations.AddField(
            model_name="issuefacettally",
            name="project",
            field=models.ForeignKey(
                db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="issues.project"
            ),
        ),
        migrations.AddConstraint(
            model_name="issuefacettally",
            constraint=models.UniqueConstraint(
                fields=("project", "status", "priority", "assignee_id", "slot"), name="facet_tally_unique"
            ),
        ),
        migrations.RunSQL(LOCK, migrations.RunSQL.noop),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.AddIndex(
            model_name="issuesearch",
            index=django.contrib.postgres.indexes.GinIndex(fields=["document"], name="issue_search_document_gin"),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="facet_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE deltas refcursor; project bigint; slot_project bigint; st text; pr text; who bigint; delta bigint; chosen int;",
                    func="OPEN deltas FOR SELECT project_id, status, priority, coalesce(assignee_id, 0), count(*) FROM facet_new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1;\n            LOOP\n                FETCH deltas INTO project, st, pr, who, delta;\n                EXIT WHEN NOT FOUND;\n                IF project IS DISTINCT FROM slot_project THEN\n                    slot_project := project;\n                    chosen := pg_backend_pid() % 64;\n                    FOR step IN 0..63 LOOP\n                        IF pg_try_advisory_xact_lock(hashtextextended(\n                            'issues_issuetally:' || project || ':' || ((pg_backend_pid() + step) % 64), 0)) THEN\n                            chosen := (pg_backend_pid() + step) % 64;\n                            EXIT;\n                        END IF;\n                    END LOOP;\n                END IF;\n                INSERT INTO issues_issuefacettally AS t (project_id, status, priority, assignee_id, slot, issues)\n                VALUES (project, st, pr, who, chosen, delta)\n                ON CONFLICT (project_id, status, priority, assignee_id, slot)\n                DO UPDATE SET issues = t.issues + EXCLUDED.issues;\n            END LOOP;\n            RETURN NULL;",
                    hash="c0a57d5ca20dd77d46bf40755379e6e05d7b657e",
                    level="STATEMENT",
                    operation="INSERT",
                    pgid="pgtrigger_facet_insert_de6a7",
                    referencing="REFERENCING NEW TABLE AS facet_new_rows ",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="facet_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE deltas refcursor; project bigint; slot_project bigint; st text; pr text; who bigint; delta bigint; chosen int;",
                    func="OPEN deltas FOR SELECT project_id, status, priority, coalesce(assignee_id, 0), -count(*) FROM facet_old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1;\n            LOOP\n                FETCH deltas INTO project, st, pr, who, delta;\n                EXIT WHEN NOT FOUND;\n                IF project IS DISTINCT FROM slot_project THEN\n                    slot_project := project;\n                    chosen := pg_backend_pid() % 64;\n                    FOR step IN 0..63 LOOP\n                        IF pg_try_advisory_xact_lock(hashtextextended(\n                            'issues_issuetally:' || project || ':' || ((pg_backend_pid() + step) % 64), 0)) THEN\n                            chosen := (pg_backend_pid() + step) % 64;\n                            EXIT;\n                        END IF;\n                    END LOOP;\n                END IF;\n                INSERT INTO issues_issuefacettally AS t (project_id, status, priority, assignee_id, slot, issues)\n                VALUES (project, st, pr, who, chosen, delta)\n                ON CONFLICT (project_id, status, priority, assignee_id, slot)\n                DO UPDATE SET issues = t.issues + EXCLUDED.issues;\n            END LOOP;\n            RETURN NULL;",
                    hash="ea19ab35db65f30c552deaea6f1b1d6e37641312",
                    level="STATEMENT",
                    operation="DELETE",
                    pgid="pgtrigger_facet_delete_3e290",
                    referencing="REFERENCING OLD TABLE AS facet_old_rows ",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="facet_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE deltas refcursor; project bigint; slot_project bigint; st text; pr text; who bigint; delta bigint; chosen int;",
                    func="OPEN deltas FOR SELECT project_id, status, priority, a, sum(d) FROM ( SELECT project_id, status, priority, coalesce(assignee_id, 0) AS a, 1 AS d FROM facet_new_rows UNION ALL SELECT project_id, status, priority, coalesce(assignee_id, 0), -1 FROM facet_old_rows) AS moved GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0 ORDER BY 1;\n            LOOP\n                FETCH deltas INTO project, st, pr, who, delta;\n                EXIT WHEN NOT FOUND;\n                IF project IS DISTINCT FROM slot_project THEN\n                    slot_project := project;\n                    chosen := pg_backend_pid() % 64;\n                    FOR step IN 0..63 LOOP\n                        IF pg_try_advisory_xact_lock(hashtextextended(\n                            'issues_issuetally:' || project || ':' || ((pg_backend_pid() + step) % 64), 0)) THEN\n                            chosen := (pg_backend_pid() + step) % 64;\n                            EXIT;\n                        END IF;\n                    END LOOP;\n                END IF;\n                INSERT INTO issues_issuefacettally AS t (project_id, status, priority, assignee_id, slot, issues)\n                VALUES (project, st, pr, who, chosen, delta)\n                ON CONFLICT (project_id, status, priority, assignee_id, slot)\n                DO UPDATE SET issues = t.issues + EXCLUDED.issues;\n            END LOOP;\n            RETURN NULL;",
                    hash="3a1c27e7d8aa70c55e20d0f8f609cc5beba01988",
                    level="STATEMENT",
                    operation="UPDATE",
                    pgid="pgtrigger_facet_update_fce17",
                    referencing="REFERENCING OLD TABLE AS facet_old_rows  NEW TABLE AS facet_new_rows ",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="facet_truncate",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="DELETE FROM issues_issuefacettally; RETURN NULL;",
                    hash="59abc3f764d4ceba5a37d0ea6561358b2f0dd84d",
                    level="STATEMENT",
                    operation="TRUNCATE",
                    pgid="pgtrigger_facet_truncate_4f168",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="search_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="INSERT INTO issues_issuesearch (issue_id, document) SELECT id, setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.title, '')), 'A') || setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.description, '')), 'B') FROM search_new_rows; RETURN NULL;",
                    hash="2b0f4c7efbea6c3165866395cb1e6b2574aa96ea",
                    level="STATEMENT",
                    operation="INSERT",
                    pgid="pgtrigger_search_insert_e61a4",
                    referencing="REFERENCING NEW TABLE AS search_new_rows ",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="search_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."description" IS DISTINCT FROM (NEW."description") OR OLD."title" IS DISTINCT FROM (NEW."title"))',
                    func="UPDATE issues_issuesearch SET document = setweight(to_tsvector('english'::regconfig, coalesce(NEW.title, '')), 'A') || setweight(to_tsvector('english'::regconfig, coalesce(NEW.description, '')), 'B') WHERE issue_id = NEW.id; RETURN NULL;",
                    hash="fdb58af22332573dabd36a8af29d0c6181822faa",
                    operation='UPDATE OF "title", "description"',
                    pgid="pgtrigger_search_update_bbf6f",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(ENABLE_ALWAYS, migrations.RunSQL.noop),
    ]
