// smctrace's live page: polls /api/page and draws it. Every value from the wire (hostnames,
// EIDs, decline texts) goes into the document as text (textContent), never as markup.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const MAX_ROWS = 100;
  const OUTCOMES = ["smc", "fallback", "failed", "incomplete"];
  let cursor = 0;
  let rows = []; // oldest first, at most MAX_ROWS

  function byId(id) {
    return document.getElementById(id);
  }

  function show(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  function addCell(tr, value, className) {
    const td = document.createElement("td");
    td.textContent = show(value);
    if (className) {
      td.className = className;
    }
    tr.appendChild(td);
    return td;
  }

  function clear(element) {
    while (element.firstChild) {
      element.removeChild(element.firstChild);
    }
  }

  function two(n) {
    return String(n).padStart(2, "0");
  }

  // "end" is seconds since the epoch (a number) or a date string
  function timeOfDay(value) {
    if (value === null || value === undefined) {
      return "";
    }
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(date.getTime())) {
      return show(value);
    }
    const ms = String(date.getMilliseconds()).padStart(3, "0");
    return two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds()) + "." + ms;
  }

  function pathVersion(c) {
    if (c.path === null || c.path === undefined) {
      return "";
    }
    let label = show(c.path);
    if (typeof c.version === "number") {
      label += " v" + c.version;
      if (c.version >= 2 && c.release !== null && c.release !== undefined) {
        label += "." + show(c.release);
      }
    } else if (c.version !== null && c.version !== undefined) {
      label += " " + show(c.version);
    }
    return label;
  }

  function declineText(d) {
    if (!d) {
      return "";
    }
    return show(d.hex) + " " + show(d.name) + ": " + show(d.text) + " (" + show(d.from) + ")";
  }

  function peersText(row) {
    const parts = [];
    if (row.client_hostname) {
      parts.push("client " + row.client_hostname);
    }
    if (row.server_hostname) {
      parts.push("server " + row.server_hostname);
    }
    if (row.eid) {
      parts.push("EID " + row.eid);
    }
    return parts.join(", ");
  }

  function milliseconds(value) {
    return typeof value === "number" ? value.toFixed(3) : show(value);
  }

  function drawRecent() {
    const body = byId("recent").tBodies[0];
    clear(body);
    for (let i = rows.length - 1; i >= 0; i--) { // newest on top
      const row = rows[i];
      const c = row.connection;
      const tr = document.createElement("tr");
      tr.className = "outcome-" + show(c.outcome).replace(/[^a-z]/g, "");
      addCell(tr, timeOfDay(c.end), "time");
      addCell(tr, c.client, "endpoint");
      addCell(tr, c.server, "endpoint");
      addCell(tr, c.outcome, "outcome");
      addCell(tr, pathVersion(c));
      const decline = addCell(tr, declineText(c.decline), "decline");
      if (!c.decline && c.outcome !== "smc") {
        decline.textContent = show(c.reason);
        decline.className = "reason";
      }
      addCell(tr, milliseconds(c.handshake_ms), "number");
      addCell(tr, peersText(row), "peers");
      body.appendChild(tr);
    }
    byId("recent-empty").hidden = rows.length > 0;
  }

  function drawDeclines(declines) {
    const body = byId("declines").tBodies[0];
    clear(body);
    for (const d of declines) {
      const tr = document.createElement("tr");
      const code = d.known ? show(d.hex) + " " + show(d.name) : show(d.decline) + " (e.g. " + show(d.hex) + ")";
      addCell(tr, code, "decline");
      addCell(tr, d.text);
      addCell(tr, d.from);
      addCell(tr, d.connections, "number");
      body.appendChild(tr);
    }
    byId("declines-empty").hidden = declines.length > 0;
  }

  function drawLoss(summary, interfaces) {
    const body = byId("loss").tBodies[0];
    clear(body);
    const items = [
      ["frames read", summary.frames], ["TCP segments", summary.segments],
      ["seen by filter", summary.seen_by_filter], ["kept by filter", summary.kept],
      ["received", summary.received], ["dropped", summary.dropped],
      ["malformed messages", summary.malformed], ["gaps", summary.gaps],
    ];
    for (const [name, value] of items) {
      if (value === undefined) {
        continue; // a file trace has no kernel counters
      }
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = name;
      tr.appendChild(th);
      const td = addCell(tr, value === null ? "n/a" : value, "number");
      if ((name === "dropped" || name === "gaps" || name === "malformed messages") && value > 0) {
        td.classList.add("bad");
      }
      body.appendChild(tr);
    }
    const table = byId("interfaces");
    const ifBody = table.tBodies[0];
    clear(ifBody);
    for (const i of interfaces) {
      const tr = document.createElement("tr");
      addCell(tr, i.interface);
      addCell(tr, i.seen_by_filter === null ? "n/a" : i.seen_by_filter, "number");
      addCell(tr, i.kept === null ? "n/a" : i.kept, "number");
      const dropped = addCell(tr, i.dropped === null ? "n/a" : i.dropped, "number");
      if (i.dropped > 0) {
        dropped.classList.add("bad");
      }
      ifBody.appendChild(tr);
    }
    table.hidden = interfaces.length === 0;
  }

  function apply(data) {
    if (data.cursor < cursor) {
      rows = []; // another smctrace answers on this port now
    }
    rows = rows.concat(data.rows).slice(-MAX_ROWS);
    cursor = data.cursor;
    const summary = data.summary;
    for (const outcome of OUTCOMES) {
      byId("count-" + outcome).textContent = show(summary.outcomes[outcome]);
    }
    byId("count-followed").textContent = show(data.followed);
    byId("count-messages").textContent = show(summary.messages);
    byId("trace").textContent = (data.state === "finished" ? "finished trace of " : "tracing ") +
      show(data.source) + " \u00b7 smctrace " + show(data.version) + " \u00b7 " +
      show(summary.connections) + " connections";
    document.title = "smctrace " + show(data.source);
    drawRecent();
    drawDeclines(data.declines);
    drawLoss(summary, data.interfaces);
  }

  function setStatus(message, bad) {
    const status = byId("status");
    status.textContent = message;
    status.classList.toggle("bad", bad);
  }

  async function refresh() {
    try {
      const reply = await fetch("api/page?after=" + cursor, {cache: "no-store"});
      if (!reply.ok) {
        throw new Error("HTTP " + reply.status);
      }
      apply(await reply.json());
      setStatus("updated " + timeOfDay(Date.now() / 1000), false);
    } catch (error) {
      setStatus("cannot reach smctrace (" + show(error && error.message) + "); retrying", true);
    } finally {
      window.setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
})();
