// triggerfish dashboard: polls the state document and draws it. Every value goes into the page as text
// (textContent, setAttribute): nothing from the document is ever parsed as markup.
"use strict";

(() => {
  const STATE = document.body.dataset.state || "/dashboard/state.json";
  const AUTH = document.body.dataset.auth || "none";
  const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 2000);
  const KEY_STORE = "triggerfish.dashboard.key";
  const SVG = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- DOM helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const show = (value) => (value === null || value === undefined || value === "" ? "–" : String(value));
  const ms = (value) => (value === null || value === undefined ? "–" : `${Number(value).toFixed(1)} ms`);
  const when = (epoch) => (epoch ? new Date(epoch * 1000).toLocaleString() : "–");

  function ago(seconds) {
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  function table(key, caption, headers, rows) {
    const head = el("tr", {}, headers.map((h) => el("th", { scope: "col", class: h.num ? "num" : null }, h.label)));
    const body = rows.map((cells) => el("tr", {}, cells.map((c, i) =>
      el("td", { class: headers[i].num ? "num" : (c && c.cls) || null }, c && c.node ? c.node : show(c && c.text !== undefined ? c.text : c)))));
    return el("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption, "data-key": key },
      el("table", {}, el("caption", { class: "visually-hidden" }, caption), el("thead", {}, head), el("tbody", {}, body)));
  }

  // ---------------------------------------------------------------- SHA-256 and HMAC (FIPS 180-4, RFC 2104)
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));

  function sha256(bytes) {
    const length = bytes.length;
    const padded = (((length + 9) + 63) >> 6) << 6;
    const m = new Uint8Array(padded);
    m.set(bytes);
    m[length] = 0x80;
    const view = new DataView(m.buffer);
    view.setUint32(padded - 8, Math.floor(length / 0x20000000));
    view.setUint32(padded - 4, (length * 8) >>> 0);
    const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const W = new Uint32Array(64);
    for (let off = 0; off < padded; off += 64) {
      for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + 4 * i);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
        const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, h] = H;
      for (let i = 0; i < 64; i++) {
        const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        h = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    H.forEach((word, i) => outView.setUint32(4 * i, word));
    return out;
  }

  function hmac(key, message) {
    let k = key.length > 64 ? sha256(key) : key;
    const block = new Uint8Array(64);
    block.set(k);
    const inner = new Uint8Array(64 + message.length);
    const outer = new Uint8Array(64 + 32);
    for (let i = 0; i < 64; i++) { inner[i] = block[i] ^ 0x36; outer[i] = block[i] ^ 0x5c; }
    inner.set(message, 64);
    outer.set(sha256(inner), 64);
    return sha256(outer);
  }

  const utf8 = (text) => new TextEncoder().encode(text);
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  // ---------------------------------------------------------------- SigV4 (the control API's --require-auth)
  function signedHeaders(key, path) {
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const date = amzDate.slice(0, 8);
    const scope = `${date}/${key.region}/lambda/aws4_request`;
    const canonical = ["GET", path, "", `host:${location.host}\nx-amz-date:${amzDate}\n`, "host;x-amz-date",
      hex(sha256(new Uint8Array(0)))].join("\n");
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(sha256(utf8(canonical)))].join("\n");
    let signing = hmac(utf8(`AWS4${key.secret}`), utf8(date));
    for (const part of [key.region, "lambda", "aws4_request"]) signing = hmac(signing, utf8(part));
    const signature = hex(hmac(signing, utf8(toSign)));
    return {
      "X-Amz-Date": amzDate,
      Authorization: `AWS4-HMAC-SHA256 Credential=${key.id}/${scope}, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    };
  }

  function storedKey() {
    try { return JSON.parse(sessionStorage.getItem(KEY_STORE) || "null"); } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- lag chart (SVG of our own)
  const H = 150, PAD_L = 44, PAD_R = 8, PAD_T = 8, PAD_B = 20;

  function lagChart(mapping, now) {
    // drawn at about the size it is shown, so its labels stay readable on a phone
    const W = Math.round(Math.min(600, Math.max(280, document.getElementById("mappings-body").clientWidth - 32)));
    const series = (mapping.Lag || []).filter((s) => s.Samples.length);
    const figure = el("figure", { class: "chart" });
    const caption = el("figcaption", {});
    if (!series.length) {
      caption.append(el("p", { class: "muted" }, "No lag samples yet."));
      figure.append(caption);
      return figure;
    }
    const times = series.flatMap((s) => s.Samples.map((p) => p[0]));
    const lags = series.flatMap((s) => s.Samples.map((p) => p[1]));
    const start = Math.max(Math.min(...times), now - 3600);
    const span = Math.max(60, now - start);
    const top = Math.max(1, ...lags);
    const x = (t) => PAD_L + ((t - (now - span)) / span) * (W - PAD_L - PAD_R);
    const y = (v) => PAD_T + (1 - v / top) * (H - PAD_T - PAD_B);
    const name = `Lag of ${mapping.FunctionName} (${(mapping.Topics || []).join(", ")})`;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${name}: see the numbers below` });
    chart.append(svg("title", {}, name));
    chart.append(svg("line", { class: "axis", x1: PAD_L, y1: H - PAD_B, x2: W - PAD_R, y2: H - PAD_B }));
    chart.append(svg("line", { class: "axis", x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B }));
    chart.append(svg("text", { class: "grid-label", x: PAD_L - 4, y: PAD_T + 8, "text-anchor": "end" }, top));
    chart.append(svg("text", { class: "grid-label", x: PAD_L - 4, y: H - PAD_B, "text-anchor": "end" }, 0));
    chart.append(svg("text", { class: "grid-label", x: PAD_L, y: H - 5 }, `−${ago(span)}`));
    chart.append(svg("text", { class: "grid-label", x: W - PAD_R, y: H - 5, "text-anchor": "end" }, "now"));
    const list = el("ul", {});
    series.forEach((s, i) => {
      const cls = `series-${i % 6}`;
      const points = s.Samples.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      chart.append(svg("polyline", { class: `series ${cls}`, points }));
      const last = s.Samples[s.Samples.length - 1];
      chart.append(svg("circle", { class: `dot ${cls}`, cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 3 }));
      const values = s.Samples.map((p) => p[1]);
      const first = s.Samples[0];
      list.append(el("li", {
        class: "lag-text", "data-topic": s.Topic, "data-partition": s.Partition, "data-lag-now": last[1],
        "data-lag-max": Math.max(...values),
      }, el("span", { class: `key ${cls}`, "aria-hidden": "true" }),
      `${s.Topic}-${s.Partition}: lag now ${last[1]}; highest ${Math.max(...values)}, lowest ${Math.min(...values)} `
        + `over the last ${ago(now - first[0])} (${values.length} samples, the first ${first[1]}).`));
    });
    caption.append(el("p", {}, `${name}, last ${ago(span)}:`), list);
    figure.append(chart, caption);
    return figure;
  }

  // ---------------------------------------------------------------- sections
  function mappingCard(m, now, fleet) {
    const card = el("article", { class: "card", tabindex: 0, "data-key": `mapping-${m.UUID}`, "data-uuid": m.UUID,
      "aria-label": `Mapping ${m.FunctionName} ← ${(m.Topics || []).join(", ")}` });
    card.append(el("header", {},
      el("h3", {}, `${m.FunctionName} ← ${(m.Topics || []).join(", ")}`),
      el("span", { class: `badge state-${m.State}`, "data-field": "State" }, m.State)));
    const facts = el("dl", { class: "facts" });
    const fact = (label, value, field) => facts.append(el("dt", {}, label), el("dd", { "data-field": field || null }, show(value)));
    fact("UUID", m.UUID);
    fact("StateTransitionReason", m.StateTransitionReason, "StateTransitionReason");
    fact("LastProcessingResult", m.LastProcessingResult, "LastProcessingResult");
    fact("Batch", `${show(m.BatchSize)} records, window ${show(m.MaximumBatchingWindowInSeconds)} s, ${show(m.StartingPosition)}`);
    fact("Processed", `${m.Invocations} invokes, ${m.Records} records, ${m.Errors} errors`);
    card.append(facts);
    if (m.Problem) {
      card.append(el("div", { class: "problem", role: "note", "data-field": "Problem" },
        el("p", {}, el("strong", {}, "Problem "), m.Problem.Stage ? `at stage ${m.Problem.Stage}` : "",
          m.Problem.Replica ? ` on replica ${m.Problem.Replica}` : ""),
        el("p", { "data-field": "Detail" }, show(m.Problem.Detail)),
        el("p", { class: "fix", "data-field": "Fix" }, "Fix: ", show(m.Problem.Fix))));
    }
    card.append(lagChart(m, now));
    if ((m.Partitions || []).length) {
      const owner = fleet ? [{ label: "Owner" }] : [];
      card.append(table(`partitions-${m.UUID}`, `Partitions of ${m.FunctionName}`,
        [{ label: "Partition" }, ...owner, { label: "Committed", num: 1 }, { label: "End", num: 1 }, { label: "Lag", num: 1 }],
        m.Partitions.map((p) => [`${p.Topic}-${p.Partition}`, ...(fleet ? [p.Owner] : []), p.CommittedOffset, p.EndOffset, p.Lag])));
    }
    return card;
  }

  function overview(doc) {
    const states = {};
    for (const m of doc.Mappings) states[m.State] = (states[m.State] || 0) + 1;
    const problems = doc.Mappings.filter((m) => String(m.LastProcessingResult).startsWith("PROBLEM")).length;
    const lag = doc.Mappings.flatMap((m) => m.Partitions).reduce((sum, p) => sum + (p.Lag || 0), 0);
    const items = [`${doc.Mappings.length} mapping(s): `
      + Object.entries(states).sort().map(([state, n]) => `${n} ${state}`).join(", "),
    `${problems} with a PROBLEM`, `total lag ${lag}`, `${doc.Failures.length} recent failure(s) sent to destinations`];
    return el("ul", { class: "overview", "aria-label": "Overview" },
      items.map((text, i) => el("li", { class: i === 1 && problems ? "fail" : null }, text)));
  }

  function renderMappings(doc) {
    const now = doc.GeneratedAt;
    if (!doc.Mappings.length) return [el("p", { class: "empty" }, "No event source mappings.")];
    return [overview(doc), el("div", { class: "cards" }, doc.Mappings.map((m) => mappingCard(m, now, Boolean(doc.Cluster))))];
  }

  function renderFunctions(doc) {
    if (!doc.Functions.length) return [el("p", { class: "empty" }, "No functions.")];
    return [table("functions", "Functions",
      [{ label: "Function" }, { label: "Invocations", num: 1 }, { label: "Errors", num: 1 }, { label: "Throttles", num: 1 },
        { label: "p50", num: 1 }, { label: "p90", num: 1 }, { label: "p99", num: 1 }, { label: "Max", num: 1 },
        { label: "Records from mappings", num: 1 }],
      doc.Functions.map((f) => [f.FunctionName, f.Invocations, f.Errors, f.Throttles, ms(f.Duration.P50Ms),
        ms(f.Duration.P90Ms), ms(f.Duration.P99Ms), ms(f.Duration.MaxMs), f.MappingRecordsInvoked])),
    el("p", { class: "muted" }, "Durations: percentiles of each function's last invocations (up to 1000).")];
  }

  function renderFailures(doc) {
    if (!doc.Failures.length) return [el("p", { class: "empty" }, "No records sent to an on-failure destination.")];
    return [table("failures", "Records sent to on-failure destinations",
      [{ label: "When" }, { label: "Mapping" }, { label: "Destination" }, { label: "Condition" }, { label: "Offsets" },
        { label: "Invokes", num: 1 }, { label: "Error" }],
      doc.Failures.map((f) => [when(f.Time), f.MappingUUID, f.Destination, f.Condition,
        f.Offsets.map((o) => `${o.Topic}-${o.Partition} ${o.FirstOffset}–${o.LastOffset} (${o.Records})`).join("; "),
        f.ApproximateInvokeCount, f.ErrorType]))];
  }

  function renderStages(doc) {
    const rows = doc.Mappings.flatMap((m) => m.Stages.map((s) => [`${m.FunctionName} (${m.UUID.slice(0, 8)})`, s.Stage,
      s.Target, { text: s.Status, cls: s.Status === "ok" ? "ok" : s.Status === "fail" ? "fail" : "skipped" },
      s.DurationMs === null || s.DurationMs === undefined ? "–" : `${s.DurationMs} ms`, s.Detail]));
    if (!rows.length) return [el("p", { class: "empty" }, "No setup stages run yet.")];
    return [table("stages", "Setup stages",
      [{ label: "Mapping" }, { label: "Stage" }, { label: "Target" }, { label: "Result" }, { label: "Duration", num: 1 },
        { label: "Detail" }], rows)];
  }

  function renderCluster(doc) {
    const c = doc.Cluster;
    if (!c) return [el("p", { class: "empty" }, "Not in a fleet: this process runs its mappings alone.")];
    const out = [];
    if (c.Problem) out.push(el("div", { class: "problem" }, el("p", {}, show(c.Problem))));
    out.push(table("replicas", "Replicas",
      [{ label: "Replica" }, { label: "Host" }, { label: "Heartbeat", num: 1 }, { label: "Partitions owned" }],
      c.Replicas.map((r) => [r.Id, r.Host, r.HeartbeatAgeSeconds === null ? "–" : `${r.HeartbeatAgeSeconds} s ago`,
        r.Partitions.length ? r.Partitions.map((p) => `${p.Topic}-${p.Partition}`).join(", ") : "none"])));
    return out;
  }

  const SECTIONS = [["mappings-body", renderMappings], ["functions-body", renderFunctions],
    ["failures-body", renderFailures], ["stages-body", renderStages], ["cluster-body", renderCluster]];

  function render(doc) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    for (const [id, draw] of SECTIONS) document.getElementById(id).replaceChildren(...draw(doc));
    if (focused) {
      const again = document.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------- polling and sign-in
  const status = document.getElementById("status");
  const login = document.getElementById("login");
  const signout = document.getElementById("signout");
  let timer = null;

  function needLogin(message) {
    sessionStorage.removeItem(KEY_STORE);
    login.hidden = false;
    signout.hidden = true;
    document.getElementById("login-error").textContent = message || "";
    status.textContent = "Sign in to see the dashboard.";
    for (const [id] of SECTIONS) document.getElementById(id).replaceChildren();
  }

  async function refresh() {
    clearTimeout(timer);
    let headers = { Accept: "application/json" };
    if (AUTH === "sigv4") {
      const key = storedKey();
      if (!key) { needLogin(); return; }
      headers = { ...headers, ...signedHeaders(key, STATE) };
      signout.hidden = false;
    }
    try {
      const answer = await fetch(STATE, { headers, cache: "no-store", credentials: "omit" });
      if (answer.status === 401 || answer.status === 403) {
        const body = await answer.json().catch(() => ({}));
        needLogin(`Refused: ${body.message || body.Message || answer.status}`);
        return;
      }
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const doc = await answer.json();
      render(doc);
      status.textContent = `Updated ${new Date(doc.GeneratedAt * 1000).toLocaleTimeString()} · `
        + `${doc.Mappings.length} mapping(s), ${doc.Functions.length} function(s)`;
    } catch (error) {
      status.textContent = `Could not refresh (${error.message}); retrying.`;
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  login.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = { id: document.getElementById("key-id").value.trim(), secret: document.getElementById("key-secret").value,
      region: document.getElementById("key-region").value.trim() || "us-east-1" };
    sessionStorage.setItem(KEY_STORE, JSON.stringify(key));
    document.getElementById("key-secret").value = "";
    login.hidden = true;
    refresh();
  });
  signout.addEventListener("click", () => needLogin("Signed out."));

  // exposed for the tests of the signing code
  window.triggerfishDashboard = { sha256: (text) => hex(sha256(utf8(text))), hmac: (k, m) => hex(hmac(utf8(k), utf8(m))) };
  refresh();
})();
