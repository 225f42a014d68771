"""What the Alertmanager tests share: a live Debian `prometheus-alertmanager`
on a free port, and a pass/fail tally that ends in the line CI reads."""

import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Alertmanager:
    """Alertmanager with config, its data and log in tmp; ready on return.
    Stop it with stop()."""

    def __init__(self, config, tmp):
        self.url = "http://127.0.0.1:%d" % free_port()
        self.log = open(os.path.join(tmp, "alertmanager.log"), "w")
        self.process = subprocess.Popen(
            ["prometheus-alertmanager", "--config.file=" + config,
             "--storage.path=" + tmp, "--cluster.listen-address=",
             "--web.listen-address=" + self.url[len("http://"):]],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/-/ready", timeout=2)
                return
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    sys.exit("alertmanager did not start: see "
                             + self.log.name)
                time.sleep(0.2)

    def add(self, labels, annotations=None):
        """Posts one alert with amtool."""
        subprocess.run(["amtool", "alert", "add",
                        "--alertmanager.url=" + self.url]
                       + ["%s=%s" % kv for kv in labels.items()]
                       + ["--annotation=%s=%s" % kv
                          for kv in (annotations or {}).items()],
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


class Tally:
    """check() counts; done() prints 'NAME: N passed, N failed' and exits
    non-zero on a failure."""

    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what)

    def done(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed,
                                            self.failed))
        sys.exit(1 if self.failed else 0)
