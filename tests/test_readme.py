"""The README's walk-throughs run as written, in order.

Every ```sh block of README.md, and every ```python block (fed to the interpreter on its standard
input), is put, in order, into ONE bash script under ``set -euo pipefail``, which must exit 0. A block
preceded by ``<!-- not run by tests/test_readme.py: <reason> -->`` is left out (the install and
``auroral up`` step, the whole test suite); one preceded by ``<!-- tests/test_readme.py runs this only
as root ... -->`` (network namespaces) is left out unless the test runs as root where network namespaces
work, as in CI. The test does what that first block does: it starts
``auroral up`` in the background with a temporary data directory on a free port, with the
``AURORAL_NET_TRANSLATE`` the network walk-through asks for, and runs the script with
``AURORAL_DATA_DIR`` and ``AURORAL_PORT`` exported, so the README's ``eval "$(auroral env)"`` finds it.
``auroral`` and ``aws`` are this interpreter's (``-m auroral.cli``, ``-m awscli``), so the checkout
under test is what runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from .conftest import REPO, new_root_key, server_tmpdir, start_server, stop_server

README = REPO / "README.md"
SKIP = re.compile(r"<!--\s*not run by tests/test_readme\.py:(.*?)-->", re.DOTALL)
ROOT_ONLY = re.compile(r"<!--\s*tests/test_readme\.py runs this only as root\b.*?-->", re.DOTALL)
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
NEEDED = ("psql", "jq", "socat")


def blocks(text: str, *, root: bool = True) -> list[tuple[str, str]]:
    """The README's ``sh`` and ``python`` blocks, in order, as (language, body), without those a
    ``not run`` comment right before them (blank lines aside) leaves out, nor, unless ``root``, those
    marked as root's."""
    out: list[tuple[str, str]] = []
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        if lang not in ("sh", "python"):
            continue
        before = text[: match.start()].rstrip()
        if before.endswith("-->"):
            opening = before.rfind("<!--")
            comment = before[opening:]
            if SKIP.fullmatch(comment) or (ROOT_ONLY.fullmatch(comment) and not root):
                continue
        out.append((lang, body))
    return out


def script(text: str, *, root: bool) -> str:
    parts = ["set -euo pipefail"]
    for n, (lang, body) in enumerate(blocks(text, root=root), 1):
        parts.append(f"echo \"=== README block {n} ({lang}) at ${{SECONDS}} s\" >&2")
        if lang == "sh":
            parts.append(body)
        else:
            # a quoted here-document: nothing in the body is expanded by the shell
            parts.append(f"\"$README_PYTHON\" - <<'README_PYTHON_EOF'\n{body}README_PYTHON_EOF")
    return "\n".join(parts) + "\n"


def netns_available() -> bool:
    """Root, with ``ip`` and network namespaces that can be made here (not in every container)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"readme{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=30, check=False)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)
    return made.returncode == 0


def test_blocks_are_found() -> None:
    text = README.read_text(encoding="utf-8")
    found = blocks(text)
    langs = [lang for lang, _ in found]
    assert langs.count("python") >= 1 and langs.count("sh") >= 8
    bodies = "\n".join(body for _, body in found)
    code = re.sub(r"(?m)(^|\s)#.*$", "", bodies)  # without the comments, which show outputs
    assert "auroral up  " not in bodies and "pip install" not in bodies  # the skipped blocks
    assert 'eval "$(auroral env)"' in found[0][1]
    # no placeholder is left for the reader to fill in
    assert not re.search(r"<(?:alice|account|acct|DbClusterResourceId)[^>]*>|psql \.\.\.", code)
    assert not re.search(r"(?m)^\s*alias\s", code)  # bash expands no aliases in a script


def test_readme_walkthroughs_run_as_written() -> None:
    root = netns_available()
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI lacks {', '.join(missing)}: .ci/run installs them for the README's walk-throughs")
    if missing:
        pytest.skip(f"the README's walk-throughs need {', '.join(missing)} (.ci/run installs them)")
    key, secret = new_root_key()
    base = server_tmpdir()
    server = start_server(base / "data", access_key=key, secret_key=secret, account="123456789012",
                          extra_env={"AURORAL_NET_TRANSLATE": "127.10.0.0/16=10.0.0.0/16",
                                     # the product's KMS key watch (rds/encryption.py, 5 s), not the tests'
                                     # 1 s (conftest.start_server): the walk-through is a user's, and it
                                     # disables a key for a moment; noticed, that costs its waiters 30 s
                                     "AURORAL_KMS_CHECK_SECONDS": "5"})
    text = ""
    try:
        bin_dir = base / "bin"
        bin_dir.mkdir()
        for name, module in (("auroral", "auroral.cli"), ("aws", "awscli")):
            tool = bin_dir / name
            tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
            tool.chmod(0o755)
        path = base / "readme.sh"
        text = script(README.read_text(encoding="utf-8"), root=root)
        path.write_text(text)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "AURORAL_", "PG")) and k != "TMPDIR"}
        env.update({
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "AURORAL_DATA_DIR": str(server.data_dir),
            "AURORAL_PORT": server.url.rsplit(":", 1)[1],
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "README_PYTHON": sys.executable,
            "TMPDIR": str(base),  # whatever a block makes with mktemp goes with the test's directory
        })
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        # its own session: whatever a block leaves running in the background goes with it at the end
        proc = subprocess.Popen(["bash", str(path)], cwd=base, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            if proc.returncode is None:
                out, err = proc.communicate()
        assert proc.returncode == 0, (
            f"the README's walk-throughs failed ({proc.returncode}):\n"
            f"--- stderr\n{err[-6000:]}\n--- stdout\n{out[-3000:]}")
        # some of the outputs the README shows in its comments
        shown = ["explicitDeny", "arn:aws:iam::123456789012:user/alice", "{rds_superuser}",
                 " 127.10.1.10\n", " reporter\n"] + ([" 10.231.1.10\n"] if root else [])
        assert [line for line in shown if line not in out] == [], out[-3000:]
        assert 'role "dbadmin" has not been granted membership in role "rds_superuser"' in err
    finally:
        # what a block that failed half-way left: other installations it started, its namespaces
        for info in base.glob("tmp.*/server.json"):
            subprocess.run([sys.executable, "-m", "auroral.cli", "down", "--data-dir", str(info.parent)],
                           capture_output=True, timeout=60, check=False)
        if root:
            for name in re.findall(r"^\s*ip netns add (\S+)", text, re.MULTILINE):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)
        stop_server(server)
        shutil.rmtree(base, ignore_errors=True)
