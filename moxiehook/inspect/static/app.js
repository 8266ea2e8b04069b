// moxiehook inspector page. Everything that came from the network is shown with textContent,
// never as HTML. The list renders only the rows in view, so 10,000 requests stay responsive.
"use strict";
(function () {
  const TOKEN = document.querySelector('meta[name="moxiehook-token"]').content;
  const ROW = 26, OVERSCAN = 10, LIMIT = 10000, PRETTY_MAX = 300000;
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text !== undefined) n.textContent = String(text); if (cls) n.className = cls; return n; };
  let items = [];            // summaries, newest first
  const byId = new Map();
  let selected = null, previous = null, current = null, pending = [], scheduled = false;

  // ---- API ---------------------------------------------------------------
  async function api(method, url, body) {
    const init = { method, headers: {} };
    if (method !== "GET") init.headers["X-Moxiehook-Token"] = TOKEN;
    // A string is JSON text already (an edit whose body must keep the digits it was typed with).
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = typeof body === "string" ? body : JSON.stringify(body); }
    const response = await fetch(url, init);
    const type = response.headers.get("Content-Type") || "";
    const data = type.startsWith("application/json") ? await response.json() : await response.text();
    if (!response.ok) throw new Error((data && data.error) || ("HTTP " + response.status));
    return data;
  }
  function notice(text, bad) { const n = $("notice"); n.textContent = text; n.style.color = bad ? "var(--bad)" : ""; }

  // ---- filters -----------------------------------------------------------
  function filterQuery() {
    const q = new URLSearchParams({ limit: String(LIMIT) });
    const event = $("filter-event").value, text = $("filter-text").value.trim();
    if (event) q.set("event", event);
    if ($("filter-failed").checked) q.set("failed", "1");
    if (text) q.set("q", text);
    return q;
  }
  function isFailed(s) {
    return s.auth_ok === false || s.signature_ok === false || s.schema_ok === false || s.status === null || s.status >= 400;
  }
  function passes(s) {
    const event = $("filter-event").value;
    if (event && s.event !== event) return false;
    if ($("filter-failed").checked && !isFailed(s)) return false;
    return true;
  }
  const knownEvents = new Set();
  function addEventOption(name) {
    if (!name || knownEvents.has(name)) return;
    knownEvents.add(name);
    $("filter-event").appendChild(el("option", name)).value = name;
  }
  async function reload() {
    try {
      const data = await api("GET", "/api/requests?" + filterQuery());
      items = data.requests; byId.clear();
      for (const s of items) { byId.set(s.id, s); addEventOption(s.event); }
      pending = []; render(true);
    } catch (err) { notice("cannot load the list: " + err.message, true); }
  }

  // ---- the list (virtual) -----------------------------------------------
  function mark(ok, label) {
    const span = el("span", ok === null || ok === undefined ? "·" : ok ? "✓" : "✗", ok === null || ok === undefined ? "mark-none" : ok ? "mark-ok" : "mark-bad");
    span.title = label + (ok === null || ok === undefined ? " not checked" : ok ? " ok" : " failed");
    return span;
  }
  function rowFor(s, index) {
    const row = el("div", undefined, "row" + (isFailed(s) ? " bad" : "") + (s.id === selected ? " selected" : ""));
    row.style.position = "absolute"; row.style.top = (index * ROW) + "px"; row.style.left = "0"; row.style.right = "0";
    row.dataset.id = s.id;
    row.appendChild(el("span", (s.at || "").slice(11, 23)));
    row.appendChild(el("span", s.event || "—"));
    row.appendChild(el("span", s.method + " " + s.path));
    const checks = el("span");
    checks.append(mark(s.auth_ok, "auth"), mark(s.signature_ok, "signature"), mark(s.schema_ok, "schema"));
    row.appendChild(checks);
    row.appendChild(el("span", s.status === null ? "none" : s.status + (s.app_status !== null && s.app_status !== s.status ? "/" + s.app_status : ""), "st"));
    row.title = s.mode + (s.replay_of ? " of " + s.replay_of : "");
    return row;
  }
  function render(force) {
    const list = $("list"), rows = $("list-rows");
    $("list-spacer").style.height = (items.length * ROW) + "px";
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(items.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + OVERSCAN);
    const fragment = document.createDocumentFragment();
    for (let i = first; i < last; i++) fragment.appendChild(rowFor(items[i], i));
    rows.replaceChildren(fragment);
    $("count").textContent = items.length + " shown";
  }
  $("list").addEventListener("scroll", () => requestAnimationFrame(() => render()));
  window.addEventListener("resize", () => render());
  $("list").addEventListener("click", (event) => {
    const row = event.target.closest(".row[data-id]");
    if (row) open(row.dataset.id);
  });

  function arrived(s) {
    addEventOption(s.event);
    if (byId.has(s.id) || !passes(s)) return;
    pending.push(s);
    if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
  }
  function flush() {
    scheduled = false;
    if (!pending.length) return;
    const fresh = pending.reverse().filter((s) => !byId.has(s.id));
    pending = [];
    for (const s of fresh) byId.set(s.id, s);
    const list = $("list"), keep = list.scrollTop > 0;
    items = fresh.concat(items);
    if (items.length > LIMIT) { for (const s of items.splice(LIMIT)) byId.delete(s.id); }
    if (keep) list.scrollTop += fresh.length * ROW;  // do not move what the user is reading
    render();
  }

  // ---- the stream --------------------------------------------------------
  let textTimer = null;
  function connect() {
    const source = new EventSource("/api/stream");
    source.addEventListener("open", () => {
      document.body.dataset.live = "";
      $("live-mark").textContent = "● live";
      reload();  // whatever came while the stream was closed
    });
    source.addEventListener("request", (event) => {
      let s; try { s = JSON.parse(event.data); } catch (err) { return; }
      if ($("filter-text").value.trim()) {  // text matches bodies the summary does not carry: ask the server
        clearTimeout(textTimer); textTimer = setTimeout(reload, 300); return;
      }
      arrived(s);
    });
    source.addEventListener("error", () => {
      delete document.body.dataset.live;
      $("live-mark").textContent = "○ reconnecting";
      // A dropped stream is retried by the browser itself; one refused with a status (503: every stream
      // slot taken, e.g. by tabs closed a moment ago) is not, so the page asks again a little later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    });
  }

  // ---- detail ------------------------------------------------------------
  function table(tbody, headers) {
    const body = tbody.tagName === "TBODY" ? tbody : tbody.querySelector("tbody");
    body.replaceChildren();
    for (const [name, value] of Object.entries(headers || {})) {
      const tr = el("tr"); tr.append(el("td", name), el("td", value)); body.appendChild(tr);
    }
  }
  function escapePointer(key) { return String(key).replace(/~/g, "~0").replace(/\//g, "~1"); }
  // Pretty JSON as lines, each knowing the pointer of the value that starts on it. Made from the body's own
  // text, token by token, never through JavaScript values: numbers and strings keep the characters that
  // arrived (a JavaScript number would turn 12345678901234567890 into 12345678901234567000), keys keep their
  // order and their repeats. Only called on a body the server parsed as JSON.
  function tokens(text) {
    const out = []; let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") { i++; continue; }
      if ("{}[]:,".includes(c)) { out.push(c); i++; continue; }
      let j = i + 1;
      if (c === '"') { while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1; j++; }
      else { while (j < text.length && !' \t\n\r{}[]:,"'.includes(text[j])) j++; }
      out.push(text.slice(i, j)); i = j;
    }
    return out;
  }
  function prettyLines(text) {
    const toks = tokens(text), lines = [];
    let at = 0;
    function walk(pointer, indent, prefix) {
      const pad = "  ".repeat(indent), open = toks[at++];
      if (open !== "{" && open !== "[") { lines.push({ text: pad + prefix + open, pointer }); return; }
      const close = open === "{" ? "}" : "]";
      if (toks[at] === close) { at++; lines.push({ text: pad + prefix + open + close, pointer }); return; }
      lines.push({ text: pad + prefix + open, pointer });
      for (let index = 0; at < toks.length; index++) {
        if (open === "{") {
          const key = toks[at]; at += 2;  // the key and its colon
          walk(pointer + "/" + escapePointer(JSON.parse(key)), indent + 1, key + ": ");
        } else {
          walk(pointer + "/" + index, indent + 1, "");
        }
        if (toks[at++] !== ",") break;  // the closing bracket
        lines[lines.length - 1].text += ",";
      }
      lines.push({ text: pad + close, pointer: null });
    }
    walk("", 0, "");
    return lines;
  }
  // The body as it is shown, edited and downloaded: pretty when it is JSON, else as it came.
  function prettyText(d) {
    if (d.json_error || d.body.length > PRETTY_MAX) return d.body;
    return prettyLines(d.body).map((line) => line.text).join("\n") + "\n";
  }
  function showBody(d) {
    const pre = $("body"); pre.replaceChildren();
    $("json-error").textContent = "";
    const schema = d.schema || { errors: [], unknown: [] };
    if (d.json_error) {
      const e = d.json_error;
      $("json-error").textContent = "Not JSON: " + e.message + " at line " + e.line + ", column " + e.column;
      const lines = d.body.split("\n");
      lines.forEach((line, i) => {
        const span = el("span", line, "ln" + (i + 1 === e.line ? " err" : ""));
        pre.appendChild(span);
        if (i + 1 === e.line) pre.appendChild(el("span", " ".repeat(Math.max(0, e.column - 1)) + "^ " + e.message, "schema-error json-error-mark"));
      });
      return;
    }
    if (d.body.length > PRETTY_MAX) { pre.textContent = d.body; return; }
    const errorsAt = new Map(), unknown = new Set(schema.unknown);
    for (const error of schema.errors) {
      if (!errorsAt.has(error.pointer)) errorsAt.set(error.pointer, []);
      errorsAt.get(error.pointer).push(error.message);
    }
    const fragment = document.createDocumentFragment();
    for (const line of prettyLines(d.body)) {
      const messages = line.pointer !== null ? errorsAt.get(line.pointer) : undefined;
      const drift = line.pointer !== null && unknown.has(line.pointer);
      const span = el("span", line.text, "ln" + (messages ? " err" : "") + (drift ? " drift" : ""));
      if (line.pointer !== null) span.dataset.pointer = line.pointer;
      fragment.appendChild(span);
      for (const message of messages || []) {
        const note = el("span", "↑ " + message, "schema-error"); note.dataset.pointer = line.pointer; fragment.appendChild(note);
      }
      if (drift) { const note = el("span", "↑ not in Moxie's sample of this event (drift)", "drift-note"); note.dataset.pointer = line.pointer; fragment.appendChild(note); }
    }
    pre.appendChild(fragment);
  }
  function showSchema(d) {
    const box = $("schema"); box.replaceChildren();
    const s = d.schema;
    if (!s) { box.appendChild(el("p", d.event ? "not checked: " + (d.json_error ? "the body is not JSON" : d.event + " is not in the catalog") : "not checked: no X-Event-Type")); return; }
    box.appendChild(el("p", s.valid ? "valid against the " + s.event + " schema" : s.errors.length + " error(s) against the " + s.event + " schema", s.valid ? "mark-ok" : "mark-bad"));
    const ul = el("ul"); ul.id = "schema-errors";
    for (const e of s.errors) { const li = el("li", (e.pointer || "(root)") + ": " + e.message); li.dataset.pointer = e.pointer; ul.appendChild(li); }
    box.appendChild(ul);
    if (s.unknown.length) box.appendChild(el("p", "not in Moxie's sample (drift): " + s.unknown.join(", ")));
  }
  async function open(id) {
    let d;
    try { d = await api("GET", "/api/requests/" + encodeURIComponent(id)); }
    catch (err) { notice(err.message, true); return; }
    if (current && current.id !== d.id) previous = current;
    current = d; selected = d.id; render();
    $("empty").hidden = true; $("detail").hidden = false; $("detail").dataset.id = d.id;
    $("editor").hidden = true; $("export").hidden = true; $("diff").hidden = true; notice("");
    $("d-title").textContent = d.method + " " + d.path + "  " + (d.event || "");
    $("d-meta").textContent = [d.at, "mode " + d.mode, d.replay_of ? "replay of " + d.replay_of : "",
      "status " + (d.status === null ? "none" : d.status), d.app_status !== null ? "app " + d.app_status : "",
      d.duration_ms !== null ? d.duration_ms + " ms" : "", d.truncated ? "body cut at 1 MiB of " + d.body_size + " bytes" : "", d.id].filter(Boolean).join(" · ");
    $("diff-previous").disabled = !previous || Boolean(previous.json_error) || Boolean(d.json_error);
    showSchema(d); showBody(d); table($("headers"), d.headers);
    const a = d.answer;
    $("answer-status").textContent = a ? "HTTP " + a.status : "no answer";
    table($("answer-headers"), a ? a.headers : {}); $("answer-body").textContent = a ? (a.body || "") : "";
  }

  // ---- actions -----------------------------------------------------------
  // One replay at a time from the page: a double click, or a second click while the app is slow to answer,
  // must not send the webhook twice.
  let replaying = false;
  async function replay(edit) {
    if (replaying) return;
    replaying = true;
    for (const id of ["replay", "edit-send"]) $(id).disabled = true;
    try {
      const result = await api("POST", "/api/requests/" + encodeURIComponent(current.id) + "/replay", edit);
      await open(result.id);  // opening a request clears the notice: say it after
      notice("replayed as " + result.id);
    } catch (err) { notice("replay refused: " + err.message, true); }
    finally {
      replaying = false;
      for (const id of ["replay", "edit-send"]) $(id).disabled = false;
    }
  }
  $("replay").addEventListener("click", () => replay());
  // The body as the editor shows it. Left as it is, the edit says nothing of the body and the original is
  // resent as it came: a textarea turns CRLF into LF, and holds at most the first MiB of a bigger body.
  let bodyShown = null;
  $("edit").addEventListener("click", () => {
    $("editor").hidden = false;
    $("edit-path").value = current.path;
    $("edit-headers").value = JSON.stringify(current.headers, null, 2);
    $("edit-body").value = prettyText(current);
    bodyShown = $("edit-body").value;
  });
  $("edit-cancel").addEventListener("click", () => { $("editor").hidden = true; });
  $("edit-send").addEventListener("click", () => {
    let headers, body;
    try { headers = JSON.parse($("edit-headers").value || "{}"); } catch (err) { notice("headers: " + err.message, true); return; }
    // A body that was JSON: a JSON object, array, number… typed is sent as that value (its digits as they
    // are); anything else, a JSON string included, as a string, which the API sends as the very text typed.
    // A body that was not JSON is resent as the text typed: the browser reads text moxiehook does not
    // (1e999 is Infinity here), and the text is what came.
    const text = $("edit-body").value;
    const edit = '{"path":' + JSON.stringify($("edit-path").value) + ',"headers":' + JSON.stringify(headers);
    if (text === bodyShown) { replay(edit + "}"); return; }
    try { body = current.json_error || typeof JSON.parse(text) === "string" ? JSON.stringify(text) : text; }
    catch (err) { body = JSON.stringify(text); }
    replay(edit + ',"body":' + body + "}");
  });
  async function showDiff(url, title) {
    try {
      const data = await api("GET", url + ($("ignore-volatile").checked ? "&ignore_volatile=1" : ""));
      $("diff").hidden = false; $("diff-title").textContent = title + ": " + data.changes.length + " change(s)";
      const tbody = $("diff-rows"); tbody.replaceChildren();
      for (const c of data.changes) {
        const tr = el("tr"); tr.dataset.pointer = c.pointer;
        tr.append(el("td", c.op), el("td", c.pointer || "(root)"), el("td", JSON.stringify(c.a)), el("td", JSON.stringify(c.b)));
        tbody.appendChild(tr);
      }
    } catch (err) { notice("diff: " + err.message, true); }
  }
  $("diff-sample").addEventListener("click", () => showDiff("/api/diff?a=" + encodeURIComponent(current.id) + "&sample=1", "this request → sample"));
  $("diff-previous").addEventListener("click", () => showDiff("/api/diff?a=" + encodeURIComponent(previous.id) + "&b=" + encodeURIComponent(current.id), previous.id + " → this request"));
  async function exportAs(kind) {
    try {
      const text = await api("GET", "/api/requests/" + encodeURIComponent(current.id) + "/" + kind);
      $("export").hidden = false; $("export-text").textContent = text;
      try { await navigator.clipboard.writeText(text); notice("copied as " + kind); }
      catch (err) { notice("shown below (the browser refused the clipboard): select and copy it"); }
    } catch (err) { notice(err.message, true); }
  }
  $("copy-curl").addEventListener("click", () => exportAs("curl"));
  $("copy-pytest").addEventListener("click", () => exportAs("pytest"));
  $("download").addEventListener("click", () => {
    const text = prettyText(current);
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    const a = el("a"); a.href = url; a.download = (current.event || "body") + "-" + current.id + ".json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    notice("saved: use it with moxiehook fire EVENT --data FILE");
  });
  $("clear").addEventListener("click", async () => {
    try { await api("DELETE", "/api/requests"); items = []; byId.clear(); render(); notice("list cleared (the log is untouched)"); }
    catch (err) { notice(err.message, true); }
  });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); reload(); });
  $("filter-event").addEventListener("change", reload);
  $("filter-failed").addEventListener("change", reload);
  let typing = null;
  $("filter-text").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(reload, 250); });

  api("GET", "/api/events").then((data) => data.events.forEach(addEventOption)).catch(() => {});
  connect();
})();
