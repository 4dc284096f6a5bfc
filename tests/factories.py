"""factory_boy factories for the tracker's models."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from issues.models import Comment, Issue, IssueEvent, Label
from issues.roles import sync_role_groups


def ensure_role_groups() -> None:
    """The role groups come from a data migration; transactional tests flush them, so bring them back."""
    if not Group.objects.filter(name="staff").exists():
        from django.apps import apps

        sync_role_groups(apps)


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
        if create and extracted:
            ensure_role_groups()
            self.groups.add(Group.objects.get(name=extracted))


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Label

    name = factory.Sequence(lambda n: f"label-{n}")


class IssueFactory(factory.django.DjangoModelFactory):
    """An issue written straight to the table (for fixtures); API tests create through the API."""

    class Meta:
        model = Issue
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Issue {n}")
    description = "Steps to reproduce"
    reporter = factory.SubFactory(UserFactory)

    @factory.post_generation
    def labels(self, create: bool, extracted: list[Label] | None, **kwargs: object) -> None:
        if create and extracted:
            self.labels.add(*extracted)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    issue = factory.SubFactory(IssueFactory)
    author = factory.SubFactory(UserFactory)
    body = factory.Faker("sentence")


class IssueEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IssueEvent

    issue = factory.SubFactory(IssueFactory)
    type = "commented"
    details = factory.LazyFunction(dict)
