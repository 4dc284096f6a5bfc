"""Fixtures of the webhook tests: a receiver, a project with a maintainer and a webhook, settings that let a webhook
reach localhost and retry fast."""

import pytest

from hooks.models import Webhook
from tests.factories import ProjectFactory, UserFactory, add_member
from tests.helpers import make_client
from tests.hooks.receivers import receiver as start_receiver

FAST = {
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": True,
    "WEBHOOK_TIMEOUT_SECONDS": 1,
    "WEBHOOK_RETRY_DELAYS": [0, 0, 0, 0, 0],
}


@pytest.fixture
def fast_hooks(settings):
    for name, value in FAST.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def receiver():
    with start_receiver() as state:
        yield state


@pytest.fixture
def project(db):
    return ProjectFactory(key="WEB")


@pytest.fixture
def boss(project):
    user = UserFactory(username="boss")
    add_member(user, project, "maintainer")
    return user


@pytest.fixture
def boss_client(boss):
    return make_client(boss)


@pytest.fixture
def webhook(project, receiver, fast_hooks):
    return Webhook.objects.create(project=project, url=receiver.url, events=["*"])
