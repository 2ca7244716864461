"""Serves a GGUF model with llama.cpp's OpenAI-compatible server (xllamacpp).

    .venv/bin/python serve.py MODEL.gguf [--ctx N] [--threads N] [--port N]

Prints `listening http://127.0.0.1:PORT` on stdout once the model is loaded
(port 0, the default, lets the kernel choose), then serves until stdin
closes or the process is killed. Used by tests/it/model.rs and
benches/model_loop.sh; installed by .ci/install-llama.
"""
import argparse
import sys

import xllamacpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    p = xllamacpp.CommonParams()
    p.model.path = args.model
    p.hostnames = ["127.0.0.1"]
    p.port = args.port
    p.n_ctx = args.ctx
    p.n_parallel = 1
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.warmup = False
    server = xllamacpp.Server(p)
    print("listening", server.listening_address, flush=True)
    # Serve until whoever started us closes our stdin (or kills us).
    sys.stdin.read()


if __name__ == "__main__":
    main()
