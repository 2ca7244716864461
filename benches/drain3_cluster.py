"""Clusters the messages of a file (one per line) with drain3, as the peer
of ratchet's fingerprinting in benches/cluster.rs. Prints the time, the
throughput and the number of clusters."""
import sys
import time

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    lines = [line.rstrip("\n") for line in f]

config = TemplateMinerConfig()
config.profiling_enabled = False
miner = TemplateMiner(config=config)
started = time.perf_counter()
for line in lines:
    miner.add_log_message(line)
elapsed = time.perf_counter() - started
print(f"drain3 (Python {sys.version.split()[0]}, in memory): {len(lines)} messages in {elapsed:.3f} s = {len(lines) / elapsed:.0f} msg/s -> {len(miner.drain.clusters)} clusters")
print(f"drain3_seconds={elapsed:.6f}")
