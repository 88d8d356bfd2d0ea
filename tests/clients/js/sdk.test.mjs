// The LangGraph JS/TS SDK, unchanged, against Agentia's gateway: every method it offers for
// assistants, threads, runs, crons and the store. Run by tests/integration/test_langgraph_js_sdk.py
// with AGENTIA_GATEWAY_URL and AGENTIA_API_KEY set; node's own test runner reports each case.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@langchain/langgraph-sdk";

const client = new Client({
  apiUrl: process.env.AGENTIA_GATEWAY_URL,
  apiKey: process.env.AGENTIA_API_KEY,
  callerOptions: { maxRetries: 0 },
});
const CALC = 'calculator {"expression": "6*7"}';
const MODES = ["values", "messages", "messages-tuple", "updates", "events", "debug", "custom"];

async function refused(promise, words) {
  await assert.rejects(promise, (err) => {
    const status = err.status ?? err.response?.status;
    assert.ok(status >= 400 && status < 500, `a 4xx, got ${status}: ${err.message}`);
    for (const word of words) assert.match(String(err.message), new RegExp(word));
    return true;
  });
}

async function collect(iterable) {
  const parts = [];
  for await (const part of iterable) parts.push(part);
  return parts;
}

test("assistants", async () => {
  const found = await client.assistants.search({ limit: 100 });
  assert.ok(found.some((a) => a.assistant_id === "assistant"));
  assert.equal(await client.assistants.count({}), found.length);
  assert.equal((await client.assistants.get("assistant")).name, "assistant");
  assert.ok((await client.assistants.getSchemas("assistant")).input_schema);
  assert.ok((await client.assistants.getGraph("assistant")).nodes.length >= 3);
  assert.deepEqual(await client.assistants.getSubgraphs("assistant"), {});
  assert.equal((await client.assistants.getVersions("assistant"))[0].assistant_id, "assistant");
  for (const call of [
    () => client.assistants.create({ graphId: "assistant" }),
    () => client.assistants.update("assistant", { metadata: { a: 1 } }),
    () => client.assistants.delete("assistant"),
    () => client.assistants.setLatest("assistant", 1),
  ]) {
    await refused(call(), ["agents are defined by YAML files"]);
  }
});

test("threads", async () => {
  const tag = Math.random().toString(16).slice(2, 10);
  const thread = await client.threads.create({ metadata: { t: tag } });
  const id = thread.thread_id;
  assert.equal((await client.threads.get(id)).thread_id, id);
  assert.equal((await client.threads.update(id, { metadata: { u: 1 } })).metadata.u, 1);
  assert.deepEqual((await client.threads.search({ metadata: { t: tag } })).map((t) => t.thread_id), [id]);
  assert.equal(await client.threads.count({ metadata: { t: tag } }), 1);
  await client.threads.updateState(id, { values: { messages: [{ role: "user", content: "first" }] } });
  await client.runs.wait(id, "assistant", { input: CALC });
  const state = await client.threads.getState(id);
  assert.equal(state.values.messages[0].content, "first");
  assert.equal(state.values.messages.length, 5);
  const history = await client.threads.getHistory(id, { limit: 10 });
  assert.ok(history.length >= 2);
  const copy = await client.threads.copy(id);
  assert.equal((await client.threads.getState(copy.thread_id)).values.messages.length, 5);
  await refused(client.threads.patchState(id, { a: 1 }), ["not supported"]);
  await refused(collect(client.threads.joinStream(id)), ["thread streams are not supported"]);
  await client.threads.delete(copy.thread_id);
  assert.equal((await client.threads.prune([id])).pruned_count, 1);
});

test("runs in every stream mode, and every runs method", async () => {
  const id = (await client.threads.create()).thread_id;
  for (const mode of MODES) {
    const parts = await collect(client.runs.stream(id, "assistant", { input: CALC, streamMode: mode }));
    assert.equal(parts[0].event, "metadata", mode);
    assert.ok(parts.length > 1, mode);
  }
  const values = await collect(client.runs.stream(id, "assistant", { input: "hello" }));
  const last = values.at(-1).data.messages;
  assert.equal(last.at(-2).content, "hello"); // the new input is in the stream's values
  const stateless = await collect(client.runs.stream(null, "assistant", { input: "hi" }));
  assert.equal(stateless[0].event, "metadata");
  const waited = await client.runs.wait(null, "assistant", { input: CALC });
  assert.match(JSON.stringify(waited), /42/);
  const run = await client.runs.create(id, "assistant", { input: CALC });
  assert.match(JSON.stringify(await client.runs.join(id, run.run_id)), /42/);
  assert.equal((await client.runs.get(id, run.run_id)).status, "success");
  assert.ok((await client.runs.list(id, { limit: 50 })).some((r) => r.run_id === run.run_id));
  const slow = await client.runs.create(id, "assistant", { input: 'wait {"seconds": 2}' });
  const joined = await collect(client.runs.joinStream(id, slow.run_id));
  assert.ok(joined.length > 0);
  const slower = await client.runs.create(id, "assistant", { input: 'wait {"seconds": 5}' });
  await client.runs.cancel(id, slower.run_id, true);
  assert.equal((await client.runs.get(id, slower.run_id)).status, "interrupted");
  await client.runs.delete(id, slower.run_id);
  const busy = await client.runs.create(id, "assistant", { input: 'wait {"seconds": 5}' });
  await client.runs.cancelMany({ threadId: id, runIds: [busy.run_id] });
  await client.runs.join(id, busy.run_id);
  assert.equal((await client.runs.get(id, busy.run_id)).status, "interrupted");
  const batch = await client.runs.createBatch([
    { assistant_id: "assistant", input: "one" },
    { assistant_id: "assistant", input: "two" },
  ]);
  assert.equal(batch.length, 2);
  await refused(client.runs.create(id, "assistant", { input: "x", interruptBefore: ["agent"] }), [
    "interrupt_before",
  ]);
});

test("crons", async () => {
  const id = (await client.threads.create()).thread_id;
  const cron = await client.crons.create("assistant", { schedule: "0 9 * * *", input: "brief" });
  const onThread = await client.crons.createForThread(id, "assistant", { schedule: "0 10 * * *", input: "x" });
  try {
    const listed = await client.crons.search({ assistantId: "assistant", limit: 1000 });
    assert.ok(listed.some((c) => c.cron_id === cron.cron_id));
    assert.equal(await client.crons.count({ threadId: id }), 1);
    const changed = await client.crons.update(cron.cron_id, { schedule: "0 11 * * *" });
    assert.equal(changed.schedule, "0 11 * * *");
    await refused(client.crons.create("nobody", { schedule: "0 9 * * *", input: "x" }), ["no agent"]);
  } finally {
    await client.crons.delete(cron.cron_id);
    await client.crons.delete(onThread.cron_id);
  }
});

test("store", async () => {
  const ns = ["jssdk", Math.random().toString(16).slice(2, 10)];
  await client.store.putItem(ns, "k1", { v: 1 });
  assert.deepEqual((await client.store.getItem(ns, "k1")).value, { v: 1 });
  const found = await client.store.searchItems(ns.slice(0, 1), { limit: 100 });
  assert.ok(found.items.some((i) => i.key === "k1"));
  const spaces = await client.store.listNamespaces({ prefix: ns.slice(0, 1), limit: 1000 });
  assert.ok(spaces.namespaces.some((n) => n[1] === ns[1]));
  await client.store.deleteItem(ns, "k1");
  await refused(client.store.getItem(ns, "k1"), ["no item 'k1'"]); // the Agent Protocol's 404
});
