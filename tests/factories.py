"""factory_boy factories for the tracker's models, and ``make_issues`` for many issues at once.

Issues and comments made without a reporter or author all share one user per test (``shared_user``), so that a
batch of issues is not a batch of users too."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from issues.access import default_project_key
from issues.fastpath.session import take_issue_numbers
from issues.models import Comment, Issue, IssueEvent, Label, Membership, Project, Visibility
from issues.roles import sync_staff_group


def ensure_role_groups() -> None:
    """The staff group comes from a data migration; transactional tests flush it, so bring it back."""
    if not Group.objects.filter(name="staff").exists():
        from django.apps import apps

        sync_staff_group(apps)


def default_project() -> Project:
    """The default project (``DEFAULT_PROJECT_KEY``, internal), as the migration creates it; transactional tests
    flush it, so it is made again when missing."""
    project, _ = Project.objects.get_or_create(
        key=default_project_key(), defaults={"name": "Main", "visibility": Visibility.INTERNAL}
    )
    return project


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"P{n}")
    name = factory.LazyAttribute(lambda project: f"Project {project.key}")
    visibility = Visibility.PRIVATE


def add_member(user: Any, project: Project, role: str) -> Membership:
    """Give ``user`` the ``role`` in ``project`` (replacing any role it had there)."""
    membership, _ = Membership.objects.update_or_create(user=user, project=project, defaults={"role": role})
    user.__dict__.pop("_project_access", None)
    return membership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("password-123")

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        """``role="member"``: that role in the default project (``project=`` in the call names another)."""
        if create and extracted:
            add_member(self, kwargs.get("project") or default_project(), extracted)  # type: ignore[arg-type]


SHARED_USERNAME = "reporter"


def shared_user() -> Any:
    """The one user every factory-made issue reports and every factory-made comment is written by, unless the
    test names another: created by the first factory that needs it in a test, reused by the others."""
    return UserFactory(username=SHARED_USERNAME)


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Label

    project = factory.LazyFunction(default_project)
    name = factory.Sequence(lambda n: f"label-{n}")


class IssueFactory(factory.django.DjangoModelFactory):
    """An issue written straight to the table (for fixtures); API tests create through the API."""

    class Meta:
        model = Issue
        skip_postgeneration_save = True

    project = factory.LazyFunction(default_project)
    title = factory.Sequence(lambda n: f"Issue {n}")
    description = "Steps to reproduce"
    reporter = factory.LazyFunction(shared_user)

    @factory.post_generation
    def labels(self, create: bool, extracted: list[Label] | None, **kwargs: object) -> None:
        if create and extracted:
            self.labels.add(*extracted)

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        """The next number of the issue's project, taken as the services take it (so the instance knows it)."""
        if kwargs.get("number") is None:
            (kwargs["number"],) = take_issue_numbers(kwargs["project"].pk, 1)
        return super()._create(model_class, *args, **kwargs)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    issue = factory.SubFactory(IssueFactory)
    author = factory.LazyFunction(shared_user)
    body = factory.Faker("sentence")


class IssueEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IssueEvent

    issue = factory.SubFactory(IssueFactory)
    type = "commented"
    details = factory.LazyFunction(dict)


def make_issues(
    n: int, *, label_sets: Sequence[Sequence[Label]] = ((),), assignees: Sequence[Any] = (None,), **fields: Any
) -> list[int]:
    """``n`` issues written straight to the table at once (no events), the newest last; their ids, ascending.
    Issue ``i`` gets ``assignees[i % len(assignees)]`` and the labels ``label_sets[i % len(label_sets)]``; ``fields``
    go to every issue (the reporter is ``shared_user()`` unless given)."""
    now = timezone.now()
    fields.setdefault("reporter", shared_user())
    fields.setdefault("project", default_project())
    issues = Issue.objects.bulk_create(
        Issue(
            title=f"Issue {i}",
            assignee=assignees[i % len(assignees)],
            created_at=now - timedelta(seconds=n - i),
            updated_at=now - timedelta(seconds=n - i),
            **fields,
        )
        for i in range(n)
    )
    links = Issue.labels.through
    links.objects.bulk_create(
        links(issue_id=issue.pk, label_id=label.pk)
        for i, issue in enumerate(issues)
        for label in label_sets[i % len(label_sets)]
    )
    return sorted(issue.pk for issue in issues)
