"""Running wasim under an address-space limit, for the memory tests: a child process that
sets RLIMIT_AS once wasim is imported (its own size plus a headroom, in bytes, given as its
first argument), then runs the CLI with the rest of its arguments."""

CHILD = """
import resource, sys
from simulator.cli import cli
with open("/proc/self/status") as status:
    size = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
limit = size + int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.argv = ["wasim", *sys.argv[2:]]
cli()
"""
