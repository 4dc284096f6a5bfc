"""The limits of the tracker's fields, in one place: column sizes read from the models, and the policy limits the
columns do not state (a description, a comment, labels per issue). The serializers, the CSV import and the OpenAPI
schema all read them from here."""

from django.contrib.auth import get_user_model

from .models import Issue, Label

TITLE_MAX = Issue._meta.get_field("title").max_length or 255
LABEL_NAME_MAX = Label._meta.get_field("name").max_length or 50
USERNAME_MAX = get_user_model()._meta.get_field("username").max_length or 150
DESCRIPTION_MAX = 100_000
COMMENT_BODY_MAX = 10_000
LABELS_PER_ISSUE_MAX = 100
VERSION_MAX = 2**31 - 1  # the version column is a 4-byte integer
