"""Each search document keeps its issue's project and creation time (``IssueSearch.project_id``, ``created_at``): a
word search counts its matches in the caller's projects and reads its first page from the document table alone,
without probing the issue table once per match (docs/search.md has the figures at 1,000,000 issues).

The copies are filled from the issues in one UPDATE with the GIN index dropped and rebuilt after it (an UPDATE of
every row would add a second entry per word of every document to it), without a statement timeout (about a minute
at 1,000,000 issues); then the new btree index for the list's order is built and the table analysed (the planner
needs the new columns' statistics). The two search triggers that write documents are recreated to write the copies
too, and made to fire ALWAYS again, as 0014 and 0015 did. Writers of issues wait meanwhile (dropping a trigger locks
the issue table until the commit), so no issue is inserted without its copies.
"""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

FILL = """
SET LOCAL statement_timeout = 0;
DROP INDEX issue_search_document_gin;
ALTER TABLE issues_issuesearch ADD COLUMN project_id bigint, ADD COLUMN created_at timestamp with time zone;
UPDATE issues_issuesearch AS s SET project_id = i.project_id, created_at = i.created_at
FROM issues_issue AS i WHERE i.id = s.issue_id;
ALTER TABLE issues_issuesearch ALTER COLUMN project_id SET NOT NULL, ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX issue_search_document_gin ON issues_issuesearch USING gin (document);
CREATE INDEX issue_search_created_idx ON issues_issuesearch (created_at, issue_id);
"""
UNFILL = """
SET LOCAL statement_timeout = 0;
DROP INDEX issue_search_created_idx;
ALTER TABLE issues_issuesearch DROP COLUMN project_id, DROP COLUMN created_at;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0019_drop_unused_indexes"),
    ]

    operations = [
        # Unapplied, the old triggers come back plain ENABLE: this (the last step back) makes them fire ALWAYS again.
        migrations.RunSQL(
            migrations.RunSQL.noop,
            "ALTER TABLE issues_issue ENABLE ALWAYS TRIGGER pgtrigger_search_insert_e61a4;"
            " ALTER TABLE issues_issue ENABLE ALWAYS TRIGGER pgtrigger_search_update_bbf6f;",
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name="issue",
            name="search_update",
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name="issue",
            name="search_insert",
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FILL, UNFILL)],
            state_operations=[
                migrations.AddField(
                    model_name="issuesearch",
                    name="created_at",
                    field=models.DateTimeField(default=None),
                    preserve_default=False,
                ),
                migrations.AddField(
                    model_name="issuesearch",
                    name="project_id",
                    field=models.BigIntegerField(default=None),
                    preserve_default=False,
                ),
                migrations.AddIndex(
                    model_name="issuesearch",
                    index=models.Index(fields=["created_at", "issue"], name="issue_search_created_idx"),
                ),
            ],
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="issue",
            trigger=pgtrigger.compiler.Trigger(
                name="search_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="IF (SELECT count(*) FROM search_new_rows) <= 100 THEN INSERT INTO issues_issuesearch (issue_id, project_id, created_at, document) SELECT id, project_id, created_at, setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.title, '')), 'A') || setweight(to_tsvector('english'::regconfig, coalesce(search_new_rows.description, '')), 'B') FROM search_new_rows; ELSE INSERT INTO issues_issuesearchpending (issue_id) SELECT id FROM search_new_rows; END IF; RETURN NULL;",
                    hash="76f454711009d59347660f311f2233769420a712",
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
                    condition='WHEN (OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."description" IS DISTINCT FROM (NEW."description") OR OLD."title" IS DISTINCT FROM (NEW."title"))',
                    func="UPDATE issues_issuesearch SET document = setweight(to_tsvector('english'::regconfig, coalesce(NEW.title, '')), 'A') || setweight(to_tsvector('english'::regconfig, coalesce(NEW.description, '')), 'B'), created_at = NEW.created_at WHERE issue_id = NEW.id; RETURN NULL;",
                    hash="d237097fc40b0b49cd9c1ac47c20460c1910a8bb",
                    operation='UPDATE OF "title", "description", "created_at"',
                    pgid="pgtrigger_search_update_bbf6f",
                    table="issues_issue",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(
            "ALTER TABLE issues_issue ENABLE ALWAYS TRIGGER pgtrigger_search_insert_e61a4;"
            " ALTER TABLE issues_issue ENABLE ALWAYS TRIGGER pgtrigger_search_update_bbf6f;",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL("ANALYZE issues_issuesearch;", migrations.RunSQL.noop),
    ]
