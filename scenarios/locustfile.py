"""An example locustfile: wasim's unique, valid callbacks under Locust.

    wasim receive                                   # a test webhook on 127.0.0.1:8000
    locust -f scenarios/locustfile.py               # the UI on http://127.0.0.1:8089

Distributed: `--master` here and `--worker --master-host HOST` on each machine (see
"Distributed load with Locust" in the README). Every setting of WasimUser is a class
attribute below, or a --wasim-* option of the run (`locust -f scenarios/locustfile.py --help`).
"""

from simulator.locust import WasimUser


class Callbacks(WasimUser):
    """Button taps by users from India, Brazil and the UAE, as `wasim load --country IN,BR,AE`."""

    host = "http://127.0.0.1:8000/"  # the webhook's full URL; --host overrides it
    countries = ("IN", "BR", "AE")
    # seed = 7                     # the same callbacks every run (default: a new seed)
    # scenario = "summer-sale"     # a scenario's business, template, cast and buttons
    # app_secret = "..."           # sign X-Hub-Signature-256 (or WASIM_APP_SECRET)
    # count = 10_000               # callbacks per process, then it quits
    # wait_time = constant_throughput(10)  # from locust: at most 10 callbacks/s per user
