// A bot client written with node:crypto that signs the way the public
// Machines Room agent SDK does (its source is public; this is not a copy):
// botId is the base64url DER SPKI of an Ed25519 key, nonces are UUIDs, and
// the canonical body sorts object keys with String.prototype.localeCompare
// after a JSON round trip. It drives the seed's first-smoke sequence against
// a real `ratchet serve`, then revision and vote, and parses every error
// body with @machinesroom/contracts' parseMachineRoomApiError, checking each
// agents error code ratchet emits against AGENT_GUIDANCE_ERRORS.
//
// usage: node smoke.mjs BASE_URL NOW_MS READ_KEY
import crypto from "node:crypto";
import { AGENT_GUIDANCE_ERRORS, parseMachineRoomApiError } from "@machinesroom/contracts";

const [base, nowArg, readKey] = process.argv.slice(2);
const now = Number(nowArg);
const checked = new Map();
let failures = 0;

function expect(cond, what) {
  if (!cond) {
    failures += 1;
    console.error(`FAIL: ${what}`);
  }
}

// Keys sorted with localeCompare, undefined members dropped, JSON's own
// number and string printing: what the SDK signs.
function sortedJson(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(sortedJson).join(",") + "]";
  const keys = Object.keys(value).sort((a, b) => a.localeCompare(b));
  return "{" + keys.filter((k) => value[k] !== undefined).map((k) => JSON.stringify(k) + ":" + sortedJson(value[k])).join(",") + "}";
}
const canonical = (body) => sortedJson(JSON.parse(JSON.stringify(body)));

function bot() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ed25519");
  const botId = publicKey.export({ format: "der", type: "spki" }).toString("base64url");
  return { privateKey, botId };
}

let audience = "tmr";

async function post(who, path, body, { idempotencyKey, nonce, tamper } = {}) {
  nonce ??= crypto.randomUUID();
  const ts = String(now);
  const msg = `tmr-agent-v1:${audience}.${ts}.${nonce}.POST.${path}.${canonical(body)}`;
  const sig = crypto.sign(null, Buffer.from(msg, "utf8"), who.privateKey).toString("base64url");
  const headers = { "content-type": "application/json", "x-agent-timestamp": ts, "x-agent-nonce": nonce, "x-agent-signature": sig, "x-request-id": `node-${nonce.slice(0, 8)}` };
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const res = await fetch(base + path, { method: "POST", headers, body: tamper ? tamper(JSON.stringify(body)) : JSON.stringify(body) });
  return answer(res);
}

async function get(path, key) {
  const res = await fetch(base + path, { headers: key ? { "x-api-key": key } : {} });
  return answer(res);
}

async function answer(res) {
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = text; }
  if (!res.ok) {
    const parsed = parseMachineRoomApiError(json);
    expect(parsed !== null, `error body parses with parseMachineRoomApiError: ${text}`);
    if (parsed) {
      expect(parsed.shape === "v1-actionable", `v1-actionable shape: ${text}`);
      expect(typeof parsed.nextAction === "string" && parsed.nextAction.length > 0, `nextAction in ${text}`);
      expect(parsed.requestId === res.headers.get("x-request-id"), `requestId echoed in ${text}`);
      const guide = AGENT_GUIDANCE_ERRORS.find((g) => g.code === parsed.code);
      if (guide) {
        expect(guide.httpStatus === res.status, `${parsed.code}: status ${res.status}, contracts say ${guide.httpStatus}`);
        checked.set(parsed.code, res.status);
      }
    }
  }
  return { status: res.status, json, headers: res.headers };
}

// The SDK package is not published: the seed's stop code, then our own client.
let sdk = "present";
try { await import("@machinesroom/api-client/agent"); } catch { sdk = "SDK_PACKAGE_UNPUBLISHED"; }
expect(sdk === "SDK_PACKAGE_UNPUBLISHED", "the SDK package is unpublished, as the seed says");

// 1. bootstrap
const boot = await get("/.well-known/agent-bootstrap.json");
expect(boot.status === 200 && boot.json.bootstrapVersion === 1, "bootstrap");
audience = boot.json.api.audience;
const head = boot.json.repository.base;

// 2. join
const [author, reviewer, critic] = [bot(), bot(), bot()];
for (const b of [author, reviewer, critic]) {
  const j = await post(b, "/v1/agents/join", { botId: b.botId });
  expect(j.status === 201, `join: ${j.status} ${JSON.stringify(j.json)}`);
}

// 3. candidate, with metadata whose keys order differently under localeCompare and code units
const metadata = { a_b: 1, aB: 2, Zeta: { z: true, A: [1.5, 1e-7, -0, 0.1] }, "10": "x", "9": "y", $x: null };
expect(sortedJson(metadata) !== JSON.stringify(Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))), "the two orders differ");
const cand = await post(author, "/v1/candidates", {
  botId: author.botId, verified: false, base: head, rationale: "add a line from node",
  patch: { op: "append", path: "docs/guide.md", content: "from node\n" }, next_steps: ["more"], metadata,
}, { idempotencyKey: `agent-write:${crypto.randomUUID()}` });
expect(cand.status === 202 && cand.json.status === "PENDING", `candidate: ${cand.status} ${JSON.stringify(cand.json)}`);
const story = cand.json.storyId;
const packet = cand.json.packetHash;

// 4. status and evidence
const st = await get(`/v1/candidates/${packet}/status`, readKey);
expect(st.status === 200 && st.json.storyId === story, `status: ${JSON.stringify(st.json)}`);
const ev = await get(`/v1/candidates/${packet}/evidence`, readKey);
expect(ev.status === 200 && ev.json.metadata.Zeta.A[1] === 1e-7, `evidence: ${JSON.stringify(ev.json)}`);
expect(ev.json.signedWrite.keyOrder === "locale", "the server verified the locale order");
const noKey = await get(`/v1/candidates/${packet}/status`);
expect(noKey.status === 401, "status without x-api-key");

// 5. attestation and objection
const att = await post(reviewer, "/v1/agents/attestations", { botId: reviewer.botId, storyId: story, packetHash: packet, verified: false, role: "RISK" });
expect(att.status === 202, `attestation: ${JSON.stringify(att.json)}`);
const obj = await post(critic, "/v1/agents/objections", { botId: critic.botId, storyId: story, packetHash: packet, verified: false, role: "FACT_CHECK", severity: "LOW", reason: "wording" });
expect(obj.status === 202, `objection: ${JSON.stringify(obj.json)}`);

// 6. revision and vote
const rev = await post(critic, `/v1/stories/${encodeURIComponent(story)}/revision-proposals`, {
  botId: critic.botId, basePacketHash: packet, verified: false, reason: "better wording",
  patch: { op: "append", path: "docs/guide.md", content: "from node, revised\n" },
}, { idempotencyKey: `agent-write:${crypto.randomUUID()}` });
expect(rev.status === 202, `revision: ${JSON.stringify(rev.json)}`);
const vote = await post(reviewer, `/v1/stories/${story}/revision-proposals/${rev.json.proposalId}/votes`,
  { botId: reviewer.botId, role: "WRITER", vote: "YES", reason: "clearer" }, { idempotencyKey: `agent-write:${crypto.randomUUID()}` });
expect(vote.status === 202, `vote: ${JSON.stringify(vote.json)}`);
const room = await get(`/v1/stories/${story}/machine-room`);
expect(room.json.currentPacketHash === rev.json.packetHash, `the revision was adopted: ${JSON.stringify(room.json)}`);

// Errors, each parsed as a real client would and checked against the contracts.
const stale = await post(reviewer, "/v1/agents/attestations", { botId: reviewer.botId, storyId: story, packetHash: packet, verified: false, role: "RISK" });
expect(stale.status === 409 && stale.json.code === "CURRENT_PACKET_MISMATCH", "stale packet");
const replayNonce = crypto.randomUUID();
const fresh = rev.json.packetHash;
await post(reviewer, "/v1/agents/attestations", { botId: reviewer.botId, storyId: story, packetHash: fresh, verified: false, role: "RISK" }, { nonce: replayNonce });
const replay = await post(reviewer, "/v1/agents/attestations", { botId: reviewer.botId, storyId: story, packetHash: fresh, verified: false, role: "RISK" }, { nonce: replayNonce });
expect(replay.json.code === "AGENT_NONCE_REPLAY", "replay");
const forged = await post(reviewer, "/v1/agents/attestations", { botId: reviewer.botId, storyId: story, packetHash: fresh, verified: false, role: "RISK" }, { tamper: (t) => t.replace("RISK", "WRITER") });
expect(forged.json.code === "AGENT_SIGNATURE_INVALID", "a body changed after signing");
const self = await post(author, "/v1/agents/attestations", { botId: author.botId, storyId: story, packetHash: fresh, verified: false, role: "RISK" });
expect(self.json.code === "AGENT_BOT_ACTION_NOT_ALLOWED", "self-attestation");
const stranger = bot();
const unreg = await post(stranger, "/v1/agents/attestations", { botId: stranger.botId, storyId: story, packetHash: fresh, verified: false, role: "RISK" });
expect(unreg.json.code === "AGENT_BOT_UNREGISTERED", "unregistered");
const missing = await answer(await fetch(base + "/v1/agents/join", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
expect(missing.json.code === "AGENT_SIGNED_HEADERS_MISSING", "missing headers");
const bad = await answer(await fetch(base + "/v1/agents/join", { method: "POST", headers: { "content-type": "application/json", "x-agent-timestamp": "soon", "x-agent-nonce": "n", "x-agent-signature": "+/" }, body: "{}" }));
expect(bad.json.code === "AGENT_SIGNED_HEADERS_INVALID" && bad.json.details.length === 3, "invalid headers, all three in details");
const old = await answer(await fetch(base + "/v1/agents/join", { method: "POST", headers: { "content-type": "application/json", "x-agent-timestamp": String(now - 121000), "x-agent-nonce": crypto.randomUUID(), "x-agent-signature": "A".repeat(86) }, body: "{}" }));
expect(old.json.code === "AGENT_TIMESTAMP_DRIFT_EXCEEDED", "drift");
const key = `agent-write:${crypto.randomUUID()}`;
await post(author, "/v1/candidates", { botId: author.botId, verified: false, base: head, rationale: "r", patch: { op: "append", path: "docs/guide.md", content: "a\n" }, next_steps: [] }, { idempotencyKey: key });
const conflict = await post(author, "/v1/candidates", { botId: author.botId, verified: false, base: head, rationale: "other", patch: { op: "append", path: "docs/guide.md", content: "b\n" }, next_steps: [] }, { idempotencyKey: key });
expect(conflict.json.code === "IDEMPOTENCY_KEY_CONFLICT", "idempotency conflict");
const ak = await post(author, "/v1/candidates", { botId: author.botId, verified: true, base: head, rationale: "r", patch: { op: "append", path: "docs/guide.md", content: "c\n" }, next_steps: [] }, { idempotencyKey: `agent-write:${crypto.randomUUID()}` });
expect(ak.json.code === "AGENTKIT_VERIFICATION_FAILED", "verified without a vouch");

const want = ["AGENT_SIGNED_HEADERS_MISSING", "AGENT_SIGNED_HEADERS_INVALID", "AGENT_SIGNATURE_INVALID", "AGENT_TIMESTAMP_DRIFT_EXCEEDED", "AGENT_NONCE_REPLAY", "AGENT_BOT_UNREGISTERED", "AGENT_BOT_ACTION_NOT_ALLOWED", "CURRENT_PACKET_MISMATCH", "AGENTKIT_VERIFICATION_FAILED", "IDEMPOTENCY_KEY_CONFLICT"];
for (const c of want) expect(checked.has(c), `${c} was met and checked against the contracts`);
console.log(JSON.stringify({ story, checked: Object.fromEntries(checked), failures }));
process.exit(failures === 0 ? 0 : 1);
