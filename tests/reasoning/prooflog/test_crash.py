"""`kill -9` during a burst of appends leaves a log that verifies, with no partial record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reasoning.prooflog.log import ProofLog
from tests.reasoning.prooflog.helpers import verify_file

REPO = Path(__file__).resolve().parents[3]

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from reasoning.prooflog.log import CheckpointPolicy, ProofLog
    log = ProofLog.open(Path(sys.argv[1]), policy=CheckpointPolicy(every_records=50))
    batch = 0
    while True:
        log.append_many([("decision", {"batch": batch, "n": n, "pad": "x" * 2000}) for n in range(37)])
        log.append("kill_switch", {"batch": batch})
        batch += 1
        if batch == 5:
            print("appending", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_a_killed_writer_leaves_a_verifiable_log_without_partial_records(tmp_path: Path, delay: float) -> None:
    db = tmp_path / "crash.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, env=env, cwd=REPO)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == b"appending"
    try:
        writer.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL

    report = verify_file(db)

    assert report.ok, report.failure
    assert report.records > 0
    assert report.records % 38 in (0, 37)  # whole transactions only: a 37-decision batch, then 1 kill switch
    with ProofLog.open(db) as log:
        log.append("decision", {"after": "crash"})
    assert verify_file(db).ok
