"""``manage.py create_api_user NAME --role viewer|member|maintainer [--password P] [--staff] [--reactivate]``.

Creates or updates the user, puts it in exactly one role group, and prints its API token last. A password must
pass the project's password validators (AUTH_PASSWORD_VALIDATORS); a weak one is refused and nothing is written.
A deactivated user stays deactivated unless ``--reactivate`` is given.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from issues.roles import ROLE_PERMISSIONS, ROLES


class Command(BaseCommand):
    help = "Create or update an API user with a role, and print its token as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, required=True)
        parser.add_argument(
            "--password",
            help="Set this password; it must pass the password validators (otherwise the user cannot log in "
            "by password).",
        )
        parser.add_argument("--staff", action="store_true", help="Also give access to the Django admin.")
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
        groups = [Group.objects.get(name=options["role"])]
        if options["staff"]:
            groups.append(Group.objects.get(name="staff"))
        user.groups.remove(*Group.objects.filter(name__in=ROLE_PERMISSIONS))
        user.groups.add(*groups)
        token, _ = Token.objects.get_or_create(user=user)
        verb = "Created" if created else "Updated"
        staff = " (staff)" if user.is_staff else ""
        self.stdout.write(f"{verb} user {user.get_username()!r} with role {options['role']}{staff}.")
        if reactivated:
            self.stdout.write(f"Reactivated user {user.get_username()!r}: it can log in and use its token again.")
        elif not user.is_active:
            self.stdout.write(
                f"User {user.get_username()!r} is deactivated and stays so: it cannot log in and its token is "
                "refused. Pass --reactivate to reactivate it."
            )
        self.stdout.write(token.key)
