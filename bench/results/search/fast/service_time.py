"""In-process service time of each search case (one request at a time through Django's test client, DEBUG off, the
bench user of bench_search), for a machine too loaded for wrk's p50 to mean much. Run from a code tree with
DATABASE_URL set: python service_time.py <tag> <rounds> <requests per case per round>; prints the median ms."""

import json
import os
import statistics
import sys
import time
from urllib.parse import quote

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")
import django

django.setup()
from django.test import Client  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

with open("/tmp/wt-search/bench/results/search/words.json") as file:
    words = json.load(file)
cases = {
    "unfiltered": "/api/issues",
    "q_rare": words["rare"]["q"],
    "q_phrase": words["phrase"]["q"],
    "q_pair": words["pair"]["q"],
    "q_pair_label": words["pair_label"]["q"],
    "q_common": words["common"]["q"],
}
token = Token.objects.get(user__username="bench_maintainer")
client = Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="127.0.0.1")
tag, rounds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times: dict[str, list[float]] = {name: [] for name in cases}
for _ in range(rounds):
    for name, q in cases.items():
        path = q if q.startswith("/") else "/api/issues?q=" + quote(q)
        assert client.get(path).status_code == 200
        for _ in range(n):
            t = time.perf_counter()
            client.get(path)
            times[name].append((time.perf_counter() - t) * 1000)
medians = {name: round(statistics.median(values), 1) for name, values in times.items()}
print(json.dumps({"tag": tag, "load": os.getloadavg(), **medians}))
