"""The search generations (``SearchGeneration``): every statement that changes what a word search finds in a
project bumps a counter of that project, in the writer's own transaction, so that a search result cached by the web
process (``issues.search_cache``) knows, by one indexed sum, whether it still holds.

What changes a search's result in the documents' path (``search_index.documents_matching``: words, projects, labels,
creation dates): a search document inserted, updated or deleted (an issue created, its text changed, deleted; its
document written by the indexer), a label link added, changed or removed, a label renamed, moved or deleted (a
link's issue is in its label's project: migration 0012). Statement-level
triggers on those three tables bump each project a statement touched once. A project's counter has up to 64 rows
(slots), as the tallies have: a writer takes the lowest slot no open transaction holds (an advisory try-lock per
(project, slot), held to the end of the transaction as the row lock is), so writers of one project do not wait for
each other's commit. TRUNCATE bumps nothing: a cached result also checks the tables' file nodes, which TRUNCATE
changes. ENABLE ALWAYS, like the other triggers (0009, 0012), so that writes under session_replication_role =
replica (bench/seed.py) bump too.
"""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION issues_search_bump(projects bigint[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    project bigint;
    chosen int;
BEGIN
    FOR project IN SELECT DISTINCT p FROM unnest(projects) AS p WHERE p IS NOT NULL ORDER BY 1 LOOP
        chosen := 0;
        FOR step IN 0..63 LOOP
            IF pg_try_advisory_xact_lock(hashtextextended('issues_searchgeneration:' || project || ':' || step, 0))
            THEN
                chosen := step;
                EXIT;
            END IF;
        END LOOP;
        INSERT INTO issues_searchgeneration AS g (project_id, slot, generation) VALUES (project, chosen, 1)
        ON CONFLICT (project_id, slot) DO UPDATE SET generation = g.generation + 1;
    END LOOP;
END
$$;

CREATE FUNCTION issues_search_documents_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM issues_search_bump(ARRAY(SELECT DISTINCT project_id FROM issues_search_changed));
    RETURN NULL;
END
$$;
CREATE TRIGGER issues_search_documents_inserted AFTER INSERT ON issues_issuesearch
    REFERENCING NEW TABLE AS issues_search_changed
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_documents_changed();
CREATE TRIGGER issues_search_documents_updated AFTER UPDATE ON issues_issuesearch
    REFERENCING NEW TABLE AS issues_search_changed
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_documents_changed();
CREATE TRIGGER issues_search_documents_deleted AFTER DELETE ON issues_issuesearch
    REFERENCING OLD TABLE AS issues_search_changed
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_documents_changed();

CREATE FUNCTION issues_search_links_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM issues_search_bump(ARRAY(
        SELECT DISTINCT l.project_id FROM issues_search_links c JOIN issues_label l ON l.id = c.label_id
    ));
    RETURN NULL;
END
$$;
CREATE TRIGGER issues_search_links_inserted AFTER INSERT ON issues_issue_labels
    REFERENCING NEW TABLE AS issues_search_links
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_links_changed();
CREATE TRIGGER issues_search_links_deleted AFTER DELETE ON issues_issue_labels
    REFERENCING OLD TABLE AS issues_search_links
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_links_changed();
-- No service updates a link (they are added and removed), but a script might: both labels' projects move.
CREATE FUNCTION issues_search_links_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM issues_search_bump(ARRAY(
        SELECT l.project_id FROM issues_search_links_old c JOIN issues_label l ON l.id = c.label_id
        UNION SELECT l.project_id FROM issues_search_links_new c JOIN issues_label l ON l.id = c.label_id
    ));
    RETURN NULL;
END
$$;
CREATE TRIGGER issues_search_links_updated AFTER UPDATE ON issues_issue_labels
    REFERENCING OLD TABLE AS issues_search_links_old NEW TABLE AS issues_search_links_new
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_links_updated();

CREATE FUNCTION issues_search_labels_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM issues_search_bump(ARRAY(
        SELECT unnest(ARRAY[n.project_id, o.project_id])
        FROM issues_search_labels_new n JOIN issues_search_labels_old o ON o.id = n.id
        WHERE n.name IS DISTINCT FROM o.name OR n.project_id IS DISTINCT FROM o.project_id
    ));
    RETURN NULL;
END
$$;
CREATE TRIGGER issues_search_labels_renamed AFTER UPDATE ON issues_label
    REFERENCING OLD TABLE AS issues_search_labels_old NEW TABLE AS issues_search_labels_new
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_labels_renamed();
CREATE FUNCTION issues_search_labels_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM issues_search_bump(ARRAY(SELECT DISTINCT project_id FROM issues_search_labels_old));
    RETURN NULL;
END
$$;
CREATE TRIGGER issues_search_labels_deleted AFTER DELETE ON issues_label
    REFERENCING OLD TABLE AS issues_search_labels_old
    FOR EACH STATEMENT EXECUTE FUNCTION issues_search_labels_deleted();

ALTER TABLE issues_issuesearch ENABLE ALWAYS TRIGGER issues_search_documents_inserted;
ALTER TABLE issues_issuesearch ENABLE ALWAYS TRIGGER issues_search_documents_updated;
ALTER TABLE issues_issuesearch ENABLE ALWAYS TRIGGER issues_search_documents_deleted;
ALTER TABLE issues_issue_labels ENABLE ALWAYS TRIGGER issues_search_links_inserted;
ALTER TABLE issues_issue_labels ENABLE ALWAYS TRIGGER issues_search_links_deleted;
ALTER TABLE issues_issue_labels ENABLE ALWAYS TRIGGER issues_search_links_updated;
ALTER TABLE issues_label ENABLE ALWAYS TRIGGER issues_search_labels_renamed;
ALTER TABLE issues_label ENABLE ALWAYS TRIGGER issues_search_labels_deleted;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS issues_search_documents_inserted ON issues_issuesearch;
DROP TRIGGER IF EXISTS issues_search_documents_updated ON issues_issuesearch;
DROP TRIGGER IF EXISTS issues_search_documents_deleted ON issues_issuesearch;
DROP TRIGGER IF EXISTS issues_search_links_inserted ON issues_issue_labels;
DROP TRIGGER IF EXISTS issues_search_links_deleted ON issues_issue_labels;
DROP TRIGGER IF EXISTS issues_search_links_updated ON issues_issue_labels;
DROP TRIGGER IF EXISTS issues_search_labels_renamed ON issues_label;
DROP TRIGGER IF EXISTS issues_search_labels_deleted ON issues_label;
DROP FUNCTION IF EXISTS issues_search_documents_changed();
DROP FUNCTION IF EXISTS issues_search_links_changed();
DROP FUNCTION IF EXISTS issues_search_links_updated();
DROP FUNCTION IF EXISTS issues_search_labels_renamed();
DROP FUNCTION IF EXISTS issues_search_labels_deleted();
DROP FUNCTION IF EXISTS issues_search_bump(bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [("issues", "0020_search_project_created")]

    operations = [
        migrations.CreateModel(
            name="SearchGeneration",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("project_id", models.BigIntegerField()),
                ("slot", models.SmallIntegerField()),
                ("generation", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("project_id", "slot"), name="search_generation_unique")
                ],
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
