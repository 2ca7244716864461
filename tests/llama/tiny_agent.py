#!/usr/bin/env python3
"""A tiny file-editing coding agent backed by a local model.

It is the smallest real thing of its kind, used to test ratchet's `agent`
provider kind end to end with a real model (tests/it/model.rs): it reads the
task ratchet wrote ($RATCHET_TASK_FILE), asks an OpenAI-compatible server
($RATCHET_LLAMA_URL, llama.cpp here) for one sentence that would improve
docs/guide.md, appends that sentence to the file in its working directory
(ratchet's scratch place), and prints a one-line summary, which ratchet
takes as the rationale. Standard library only.
"""
import json
import os
import sys
import urllib.request

TARGET = "docs/guide.md"


def main() -> int:
    url = os.environ["RATCHET_LLAMA_URL"].rstrip("/") + "/v1/chat/completions"
    task = open(os.environ["RATCHET_TASK_FILE"], encoding="utf-8").read()
    text = open(TARGET, encoding="utf-8").read()
    prompt = (
        f"{task[:1500]}\n\nThe file {TARGET} reads:\n{text[:1500]}\n\n"
        "Answer with one short English sentence to add at the end of this file. "
        "Answer with the sentence only."
    )
    body = json.dumps({
        "model": "local",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 48,
        "temperature": 0,
        "seed": 7,
    }).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=90) as r:
        answer = json.load(r)
    words = answer["choices"][0]["message"]["content"]
    line = " ".join(words.split()).strip().strip('"')[:200]
    if not line:
        print("The model had nothing to add.")
        return 0
    with open(TARGET, "a", encoding="utf-8") as f:
        if not text.endswith("\n"):
            f.write("\n")
        f.write(line + "\n")
    used = answer.get("usage", {})
    print(f"Appended one sentence to {TARGET} ({used.get('completion_tokens', '?')} tokens from the local model).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
