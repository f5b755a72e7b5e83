"""Place test processes in a cgroup of their own, as the kubelet places a
pod's containers in a cgroup whose path carries the pod UID. The process probe
is then scoped by that path fragment, so a test never matches another
sqlservr on the machine. Needs a writable cgroup2 mount (root in CI)."""

import os
import uuid


def _cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup2":
                return parts[4]
    return None


class Cgroup:
    def __init__(self):
        mount = _cgroup2_mount()
        if mount is None:
            raise RuntimeError("no cgroup2 mount; the process probe tests need one")
        self.fragment = "pod" + str(uuid.uuid4())
        self.path = os.path.join(mount, "edgewarden-itest", self.fragment)
        os.makedirs(self.path, exist_ok=True)

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass  # a process still inside; the kernel frees it with the last one
