"""An issue carries labels of its own project only, checked by the database.

The services, the import and the admin only ever link an issue to labels of its project; this statement-level
trigger on the link table makes it a guarantee, whatever writes the links: each INSERT (or COPY) statement joins
its new links (its transition table) to their issues and labels once, and refuses the whole statement with a
check_violation (SQLSTATE 23514) if any link crosses projects. The label filter relies on it: its grouped count
(``issues.filters.issues_with_all_labels``) assumes one label per lowered name per issue, which holds because
names are unique per project. ENABLE ALWAYS, like the tally's triggers (0009), so that it also guards writes
made under session_replication_role = replica (bench/seed.py).
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION issues_label_links_same_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM issues_new_label_links n
        JOIN issues_issue i ON i.id = n.issue_id
        JOIN issues_label l ON l.id = n.label_id
        WHERE i.project_id <> l.project_id
    ) THEN
        RAISE EXCEPTION 'An issue may carry labels of its own project only.' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER issues_label_links_same_project AFTER INSERT ON issues_issue_labels
    REFERENCING NEW TABLE AS issues_new_label_links
    FOR EACH STATEMENT EXECUTE FUNCTION issues_label_links_same_project();
ALTER TABLE issues_issue_labels ENABLE ALWAYS TRIGGER issues_label_links_same_project;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS issues_label_links_same_project ON issues_issue_labels;
DROP FUNCTION IF EXISTS issues_label_links_same_project();
"""


class Migration(migrations.Migration):
    dependencies = [("issues", "0011_staff_project_permissions")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
