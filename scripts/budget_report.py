"""The budget contract under one fixed load, for any gatehouse binary (so a change can be
compared with main on the same load): a team with a small budget, 16 clients sending a mixed,
seeded series of requests through the mock upstream. Prints what was admitted and refused,
how many refused requests the budget could still have paid for at the end, and spend against
the budget.

Usage: python3 budget_report.py GATEHOUSE_BIN MOCK_UPSTREAM_BIN
"""

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests

BUDGET = 0.02
INPUT, OUTPUT = 0.000001, 0.000002  # USD per token of the bench model
REPLY_WORDS = 6  # the mock's reply: "This is a mock reply from Gatehouse."


def start(command, env=None):
    log = tempfile.NamedTemporaryFile("w+", delete=False)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    for _ in range(200):
        text = open(log.name).read()
        match = re.search(r"listening on (http://\S+)", text)
        if match:
            return process, match.group(1)
        time.sleep(0.05)
    raise SystemExit(f"did not start: {command}\n{open(log.name).read()}")


def real_cost(request):
    """What the mock upstream charges for a request: words + 3 prompt tokens, its reply cut to
    max_tokens (one choice, whatever n says)."""
    words = len(request["messages"][0]["content"].split())
    completion = min(REPLY_WORDS, request.get("max_tokens", REPLY_WORDS))
    return (words + 3) * INPUT + completion * OUTPUT


def main():
    gatehouse, upstream_bin = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp()
    upstream, upstream_url = start([upstream_bin])
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write(
            "model_list:\n  - model_name: bench-model\n    litellm_params:\n"
            f"      model: openai/bench-model\n      api_base: {upstream_url}\n"
            f"    model_info:\n      input_cost_per_token: {INPUT}\n"
            f"      output_cost_per_token: {OUTPUT}\n      max_output_tokens: 4096\n"
        )
    admin = "sk-admin-budget-report-0123456789"
    env = dict(os.environ, GATEHOUSE_PORT="0", GATEHOUSE_DATA_DIR=os.path.join(work, "data"),
               GATEHOUSE_MASTER_KEY=admin, GATEHOUSE_CONFIG=config, RUST_LOG="warn")
    gateway, base = start([gatehouse], env)
    try:
        headers = {"Authorization": f"Bearer {admin}"}
        requests.post(f"{base}/team/new", headers=headers,
                      json={"team_id": "report", "max_budget": BUDGET}).raise_for_status()
        key = requests.post(f"{base}/key/generate", headers=headers,
                            json={"team_id": "report"}).json()["key"]
        rng = random.Random(7)
        load = []
        for _ in range(400):
            body = {"model": "bench-model", "messages": [
                {"role": "user", "content": " ".join(["word"] * rng.randint(50, 500))}]}
            if rng.random() < 0.7:
                body["max_tokens"] = rng.randint(20, 200)
            if rng.random() < 0.1:
                body["n"] = 3
            load.append(body)

        session = requests.Session()

        def send(body):
            reply = session.post(f"{base}/v1/chat/completions",
                                 headers={"Authorization": f"Bearer {key}"}, json=body)
            return body, reply.status_code

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(send, load))
        spend = requests.get(f"{base}/team/info?team_id=report", headers=headers).json()["spend"]
        admitted = [b for b, status in results if status == 200]
        refused = [b for b, status in results if status != 200]
        left = BUDGET - spend
        affordable = sorted(real_cost(b) for b in refused)
        could_pay = 0
        for cost in affordable:
            if cost <= left:
                left -= cost
                could_pay += 1
        print(f"requests {len(load)}: admitted {len(admitted)}, refused {len(refused)}")
        print(f"refused that the budget could still pay for at the end: {could_pay}")
        print(f"spend ${spend:.6f} of ${BUDGET:.6f} ({100 * spend / BUDGET:.1f} %)")
        print(json.dumps({"admitted": len(admitted), "refused": len(refused),
                          "refused_affordable": could_pay, "spend": spend, "budget": BUDGET}))
    finally:
        gateway.terminate()
        upstream.terminate()


if __name__ == "__main__":
    main()
