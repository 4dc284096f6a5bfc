"""``manage.py create_api_user NAME --role viewer|member|maintainer [--password P] [--staff]``.

Creates or updates the user, puts it in exactly one role group, and prints its API token last.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from issues.roles import ROLE_PERMISSIONS, ROLES


class Command(BaseCommand):
    help = "Create or update an API user with a role, and print its token as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, required=True)
        parser.add_argument("--password", help="Set this password (otherwise the user cannot log in by password).")
        parser.add_argument("--staff", action="store_true", help="Also give access to the Django admin.")
        parser.add_argument("--email", default="")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        if not username:
            raise CommandError("The username may not be blank.")
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username, defaults={"email": options["email"]})
        if options["password"]:
            user.set_password(options["password"])
        elif created:
            user.set_unusable_password()
        user.is_active = True
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
        self.stdout.write(f"{verb} user {user.username!r} with role {options['role']}{staff}.")
        self.stdout.write(token.key)
