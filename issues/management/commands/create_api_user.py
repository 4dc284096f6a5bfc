"""``manage.py create_api_user NAME --role viewer|member|maintainer [--project KEY] [--password P] [--staff]
[--reactivate]``.

Creates or updates the user, gives it the role in project KEY (the default project when omitted; a role it had
there is replaced, its roles in other projects stay), and prints its API token last. ``--staff`` makes it staff
(every project, as a maintainer, and the Django admin with the ``staff`` group's permissions). An unknown project
or a password that fails the project's password validators (AUTH_PASSWORD_VALIDATORS) is refused and nothing is
written. A deactivated user stays deactivated unless ``--reactivate`` is given.
"""

from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from issues.access import default_project_key
from issues.models import Membership, Project, Role
from issues.roles import STAFF_GROUP, sync_staff_group

KEYS_LISTED = 20  # at most this many known keys in the "unknown project" error


class Command(BaseCommand):
    help = "Create or update an API user with a role in a project, and print its token as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, required=True, help="The user's role in the project.")
        parser.add_argument(
            "--project",
            metavar="KEY",
            help="The project's key, ignoring case (default: the default project, DEFAULT_PROJECT_KEY).",
        )
        parser.add_argument(
            "--password",
            help="Set this password; it must pass the password validators (otherwise the user cannot log in "
            "by password).",
        )
        parser.add_argument(
            "--staff",
            action="store_true",
            help="Also make the user staff: a maintainer in every project, and the Django admin.",
        )
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--reactivate",
            action="store_true",
            help="Reactivate the user if it was deactivated (by default a deactivated user stays so).",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("The username may not be blank.")
        project = self.project(options["project"])
        user_model = get_user_model()
        password = options["password"]
        if password:
            # Checked before anything is written, against the user as it is (or will be): the similarity
            # validator compares the password with the username and the email.
            existing = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
            candidate = existing or user_model(**{user_model.USERNAME_FIELD: username, "email": options["email"]})
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                reasons = " ".join(exc.messages)
                raise CommandError(f"The password was refused: {reasons} Nothing was changed.") from exc
        user, created = user_model.objects.get_or_create(
            **{user_model.USERNAME_FIELD: username}, defaults={"email": options["email"]}
        )
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        reactivated = False
        if not user.is_active and options["reactivate"]:
            user.is_active = True
            reactivated = True
        if options["staff"]:
            user.is_staff = True
        user.save()
        Membership.objects.update_or_create(user=user, project=project, defaults={"role": options["role"]})
        if options["staff"]:
            user.groups.add(self.staff_group())
        token, _ = Token.objects.get_or_create(user=user)
        verb = "Created" if created else "Updated"
        staff = " (staff)" if user.is_staff else ""
        self.stdout.write(
            f"{verb} user {user.get_username()!r} with role {options['role']} in project {project.key}{staff}."
        )
        if reactivated:
            self.stdout.write(f"Reactivated user {user.get_username()!r}: it can log in and use its token again.")
        elif not user.is_active:
            self.stdout.write(
                f"User {user.get_username()!r} is deactivated and stays so: it cannot log in and its token is "
                "refused. Pass --reactivate to reactivate it."
            )
        self.stdout.write(token.key)

    def project(self, key: str | None) -> Project:
        """The project named ``key`` (ignoring case; the default project when None). Raises ``CommandError``."""
        wanted = default_project_key() if key is None else key.strip().upper()
        project = Project.objects.filter(key=wanted).first()
        if project is None:
            known = list(Project.objects.order_by("key").values_list("key", flat=True)[: KEYS_LISTED + 1])
            listed = ", ".join(known[:KEYS_LISTED]) + (", ..." if len(known) > KEYS_LISTED else "")
            raise CommandError(f"Unknown project {wanted!r} (projects: {listed or 'none'}). Nothing was changed.")
        return project

    def staff_group(self) -> Group:
        """The ``staff`` group (migration 0011), made again with its permissions if it was deleted."""
        group = Group.objects.filter(name=STAFF_GROUP).first()
        if group is None:
            sync_staff_group(apps)
            group = Group.objects.get(name=STAFF_GROUP)
        return group
