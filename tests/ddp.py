"""Running a script on two gloo ranks with torchrun, for the DDP tests."""

import os
import socket
import subprocess
import sys
import textwrap

# gloo's worker threads sometimes abort ("terminate called without an active exception") during
# interpreter teardown after a finished run (≈ 1 run in 10); each rank exits directly instead
_EPILOGUE = """
dist.barrier()
dist.destroy_process_group()
os._exit(0)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_ranks(script_path, body: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Write `body` (which imports torch.distributed as dist) to script_path and run it on two
    gloo ranks of one thread each, on a free port; each rank ends with a barrier."""
    script_path.write_text("import os\n" + textwrap.dedent(body) + _EPILOGUE)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(free_port()), str(script_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
