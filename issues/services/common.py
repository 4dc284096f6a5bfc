"""What the services share: who acts, and labels left on an issue the way a prefetch leaves them."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from ..models import Issue, Label

User = AbstractBaseUser | AnonymousUser | None


def actor_id(actor: User) -> int | None:
    return actor.pk if actor is not None and actor.is_authenticated else None


def remember_labels(issue: Issue, labels: list[Label]) -> None:
    """Leave ``labels`` on the instance the way ``prefetch_related("labels")`` does, so that rendering
    the issue a service returns costs no further query."""
    cached = Label.objects.filter(pk__in=[label.pk for label in labels])
    cached._result_cache = list(labels)
    cached._prefetch_done = True  # type: ignore[attr-defined]  # Django's private prefetch state
    issue._prefetched_objects_cache = {"labels": cached}  # type: ignore[attr-defined]
