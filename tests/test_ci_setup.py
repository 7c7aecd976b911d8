"""`.ci/setup` on a machine where nothing is installed: stand-in dpkg-query, apt-get, sudo and python3 on PATH
answer like a fresh Debian and record how they were called; the real script runs unchanged."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the packages the script itself asks for (others add to the list; the tests follow it)
PACKAGES = re.search(r"APT_PACKAGES=\(([^)]*)\)", (REPO / ".ci" / "setup").read_text()).group(1).split()

# Each stand-in appends its name and arguments to $CALLS, one call per line.
STUBS = {
    # dpkg-query on a fresh machine: unknown packages go to stderr and the status is 1; installed ones are listed
    "dpkg-query": """for pkg in "$@"; do
  case "$pkg" in -*) continue ;; esac
  if grep -qx "$pkg" "$INSTALLED" 2>/dev/null; then echo "install ok installed $pkg"
  else echo "dpkg-query: no packages found matching $pkg" >&2; missing=1; fi
done
printf '%s\\n' "dpkg-query $*" >> "$CALLS"
exit "${missing:-0}"
""",
    "apt-get": 'echo "apt-get $*" >> "$CALLS"\nexit "${APT_STATUS:-0}"\n',
    "sudo": 'echo "sudo $1" >> "$CALLS"\n"$@"\n',
    # python3 -m venv .venv: a stand-in venv whose python records the pip call
    "python3": """echo "python3 $*" >> "$CALLS"
mkdir -p .venv/bin
printf '#!/bin/sh\\necho "venv-python $*" >> "$CALLS"\\n' > .venv/bin/python
chmod +x .venv/bin/python
""",
}


@pytest.fixture
def fresh_machine(tmp_path):
    """A copy of the repo's .ci beside stand-in tools; returns a function running setup with given packages present."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "setup", repo / ".ci" / "setup")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.log"

    def run(installed=(), apt_status=0):
        (tmp_path / "installed").write_text("".join(f"{p}\n" for p in installed))
        calls.write_text("")
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "INSTALLED": str(tmp_path / "installed"),
               "APT_STATUS": str(apt_status), "HOME": str(tmp_path)}
        done = subprocess.run(["bash", str(repo / ".ci" / "setup")], env=env, capture_output=True, text=True,
                              timeout=60)
        return done, calls.read_text().splitlines()

    return run


def test_a_fresh_machine_installs_every_package_then_the_venv(fresh_machine):
    done, calls = fresh_machine(installed=())
    assert done.returncode == 0, done.stderr
    install = next(c for c in calls if c.startswith("apt-get install"))
    assert install.split()[-len(PACKAGES):] == PACKAGES and "--no-install-recommends" in install
    assert calls.index("apt-get update -qq") < calls.index(install)
    assert "python3 -m venv .venv" in calls
    assert any(c.startswith("venv-python -m pip install") and "torch==2.13.0" in c and "-e .[dev," in c
               for c in calls)
    assert "setup: done" in done.stdout
    if os.getuid() != 0:  # apt runs through sudo for other users
        assert "sudo apt-get" in calls


def test_only_the_missing_packages_are_installed(fresh_machine):
    done, calls = fresh_machine(installed=PACKAGES[:-2])
    assert done.returncode == 0, done.stderr
    install = next(c for c in calls if c.startswith("apt-get install"))
    assert install.split()[-2:] == PACKAGES[-2:] and PACKAGES[0] not in install.split()


def test_a_complete_machine_runs_no_apt_at_all(fresh_machine):
    done, calls = fresh_machine(installed=PACKAGES)
    assert done.returncode == 0, done.stderr
    assert not any(c.startswith(("apt-get", "sudo")) for c in calls), calls


def test_a_failing_apt_stops_setup_before_the_venv(fresh_machine):
    done, calls = fresh_machine(installed=(), apt_status=100)
    assert done.returncode != 0
    assert not any(c.startswith("python3") for c in calls)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt install shellcheck)")
def test_ci_shell_scripts_are_shellcheck_clean():
    scripts = sorted(str(p) for p in (REPO / ".ci").iterdir() if p.is_file())
    done = subprocess.run(["shellcheck", "--shell=bash", *scripts], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
