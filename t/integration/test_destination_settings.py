#!/usr/bin/python3
"""Every destination's settings refused by name, from one table: the rules
the delivery layer applies to each destination alike (unknown keys, the URL,
the spool and basic-auth pairs), then each destination's own, checked with
obs-sidecar --check-config (exit 2, the setting named)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import check_config, free_port, main  # noqa: E402

# each destination, the key that holds its receiver's URL, and whether it
# has a spool (remote-write has none: a later counter value says more)
DESTINATIONS = {"loki": ("url", True), "otlp": ("endpoint", True),
                "remote_write": ("url", False), "clickhouse": ("url", True)}
URL = "http://127.0.0.1:9/"


def check(config):
    return check_config(config, ["--ingest", "udp:%d" % free_port()])


def shared(name, url_key, spool):
    """The rules of exporter/delivery/destination_config.c: (settings, what
    the refusal names)."""
    good = {url_key: URL}
    return [(dict(good, bogus=1), name + ".bogus"),
            ({url_key: "ftp://x"}, name + "." + url_key),
            (dict(good, spool_dir="/tmp/obs-x"),
             name + (".spool_bytes" if spool else ".spool_dir")),
            (dict(good, basic_user="u"), name + ".basic_password_file"),
            (dict(good, headers={"bad name": "v"}), name + ".headers")]


OWN = [
    ("remote_write", {"url": URL, "tenant_header": "per_tenant"},
     "operator_tenant"),
    ("remote_write", {"url": URL, "interval": "5h"}, "interval"),
    ("clickhouse", {"url": URL, "table": "a;drop"}, "clickhouse.table"),
    ("clickhouse", {"url": URL, "cost": {"classes": [
        {"name": "x", "per_gb": -1}]}}, "clickhouse.cost.classes[0].per_gb"),
    ("clickhouse", {"url": URL, "cost": {"classes": [{"per_gb": 1}]}},
     "name"),
    ("loki", {"url": URL, "slow_ms": 5}, "loki.slow_ms"),
    ("otlp", {"endpoint": URL, "tenant_header": "fixed"},
     "otlp.tenant_header"),
]


class DestinationSettingsTest(unittest.TestCase):

    def test_each_destination_alone_is_valid(self):
        for name, (url_key, _) in DESTINATIONS.items():
            p = check({name: {url_key: URL}})
            self.assertEqual(p.returncode, 0, name + ": " + p.stderr)

    def test_the_delivery_layer_rules_for_every_destination(self):
        for name, (url_key, spool) in DESTINATIONS.items():
            for settings, word in shared(name, url_key, spool):
                with self.subTest(destination=name, refused=word):
                    p = check({name: settings})
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertIn(word, p.stderr)

    def test_each_destination_own_rules(self):
        for name, settings, word in OWN:
            with self.subTest(destination=name, refused=word):
                p = check({name: settings})
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(word, p.stderr)


if __name__ == "__main__":
    main()
