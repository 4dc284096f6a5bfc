"""The ``staff`` group gets the permissions on projects and memberships (``issues.roles.STAFF``), so that staff
manage them in the admin; on databases migrated before these models existed as on new ones.

Only the staff group is touched: the role groups of migration 0002 are gone since 0010 and stay so.
"""

from django.db import migrations


def sync_staff(apps, schema_editor):
    from issues.roles import sync_staff_group

    sync_staff_group(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0010_projects"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(sync_staff, migrations.RunPython.noop)]
