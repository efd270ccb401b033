"""The live map of ``trilink watch --http``: one self-contained page (no
script or tile from the network: the relay's site may be offline) and its
JSON state, served from the watcher's process.

    server = serve(watcher, "127.0.0.1", 8080)     # GET / (the page), GET /state (Watcher.snapshot())
    server.shutdown()

The page polls ``/state`` twice a second and draws, on an equirectangular
canvas fitted to what it shows: the nations' territories, each track with
its ground track, the 95 % impact ellipses and points, the warnings and
the link health (with the ops key); a table lists the tracks
(``<tr data-tid=...>``) and ``#updates`` counts the publications applied,
so that a test in a headless browser can see it load and move.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["PAGE", "serve"]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>trilink live map</title>
<style>
body { font: 13px sans-serif; margin: 0; display: flex; }
#map { background: #0b1d2e; }
#side { padding: 8px; width: 420px; overflow: auto; height: 100vh; box-sizing: border-box; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 2px 4px; border-bottom: 1px solid #ddd; }
.warn { color: #b00; font-weight: bold; } .down { color: #b00; } .up { color: #070; }
</style></head>
<body>
<canvas id="map" width="900" height="700"></canvas>
<div id="side">
<h3>trilink <span id="relay"></span></h3>
<div>updates <span id="updates">0</span>, polls <span id="polls">0</span>,
 publications opened <span id="opened">0</span>, not ours <span id="unopened">0</span></div>
<h4>tracks</h4>
<table><thead><tr><th>nation</th><th>track</th><th>lat</th><th>lon</th><th>km</th><th>m/s</th><th>impact</th></tr></thead>
<tbody id="tracks"></tbody></table>
<h4>warnings</h4><ul id="warnings"></ul>
<h4>link health</h4><ul id="health"><li>(needs the ops key)</li></ul>
</div>
<script>
"use strict";
const cv = document.getElementById("map"), ctx = cv.getContext("2d");
let polls = 0;
function fit(pts) {
  let la0 = 90, la1 = -90, lo0 = 180, lo1 = -180;
  for (const [la, lo] of pts) { la0 = Math.min(la0, la); la1 = Math.max(la1, la); lo0 = Math.min(lo0, lo); lo1 = Math.max(lo1, lo); }
  if (la0 > la1) { la0 = 30; la1 = 45; lo0 = 120; lo1 = 145; }
  const pad = 1.0; la0 -= pad; la1 += pad; lo0 -= pad; lo1 += pad;
  const k = Math.cos((la0 + la1) / 2 * Math.PI / 180);
  const s = Math.min(cv.width / ((lo1 - lo0) * k), cv.height / (la1 - la0));
  return ([la, lo]) => [(lo - lo0) * k * s, cv.height - (la - la0) * s];
}
function ellipse(imp) {
  const pts = [], mlat = 111132.954, mlon = 111320 * Math.cos(imp.lat * Math.PI / 180);
  const th = imp.orient_deg * Math.PI / 180;
  for (let i = 0; i <= 36; i++) {
    const a = i / 36 * 2 * Math.PI, x = imp.semi_major_m * Math.cos(a), y = imp.semi_minor_m * Math.sin(a);
    const north = x * Math.cos(th) - y * Math.sin(th), east = x * Math.sin(th) + y * Math.cos(th);
    pts.push([imp.lat + north / mlat, imp.lon + east / mlon]);
  }
  return pts;
}
function path(P, pts, close) {
  ctx.beginPath();
  pts.forEach((p, i) => { const [x, y] = P(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
  if (close) ctx.closePath();
}
function draw(st) {
  const tracks = [];
  for (const [nation, per] of Object.entries(st.pictures))
    for (const recs of Object.values(per)) for (const r of recs) tracks.push([nation, r]);
  const pts = [];
  for (const t of st.territories) pts.push(...t.polygon);
  for (const [, r] of tracks) { pts.push([r.lat, r.lon]); if (r.impact) pts.push([r.impact.lat, r.impact.lon]); }
  for (const h of st.history) pts.push(...h.points);
  const P = fit(pts);
  ctx.fillStyle = "#0b1d2e"; ctx.fillRect(0, 0, cv.width, cv.height);
  for (const t of st.territories) {
    path(P, t.polygon, true); ctx.fillStyle = "#24543a"; ctx.fill(); ctx.strokeStyle = "#6a9"; ctx.stroke();
  }
  ctx.strokeStyle = "#fc6";
  for (const h of st.history) { if (h.points.length > 1) { path(P, h.points, false); ctx.stroke(); } }
  for (const [, r] of tracks) {
    if (r.impact) {
      path(P, ellipse(r.impact), true); ctx.strokeStyle = "#f55"; ctx.stroke();
      const [x, y] = P([r.impact.lat, r.impact.lon]); ctx.fillStyle = "#f55"; ctx.fillRect(x - 2, y - 2, 4, 4);
    }
    const [x, y] = P([r.lat, r.lon]);
    ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(x, y, 4, 0, 2 * Math.PI); ctx.fill();
    ctx.fillText(String(r.tid), x + 6, y - 6);
  }
  const tb = document.getElementById("tracks"); tb.innerHTML = "";
  for (const [nation, r] of tracks) {
    const tr = document.createElement("tr"); tr.dataset.tid = r.tid; tr.dataset.nation = nation;
    const v = Math.hypot(...r.vel_local);
    const imp = r.impact ? r.impact.lat.toFixed(2) + "," + r.impact.lon.toFixed(2) : "";
    for (const c of [nation, r.tid, r.lat.toFixed(3), r.lon.toFixed(3), (r.h / 1e3).toFixed(1), v.toFixed(0), imp]) {
      const td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
    }
    tb.appendChild(tr);
  }
  const wl = document.getElementById("warnings"); wl.innerHTML = "";
  for (const [nation, ws] of Object.entries(st.warnings)) for (const w of ws) if (w.status !== 2) {
    const li = document.createElement("li"); li.className = "warn";
    li.textContent = nation + ": track " + w.track_id + " impact " + w.lat.toFixed(2) + "," + w.lon.toFixed(2);
    wl.appendChild(li);
  }
  if (st.health) {
    const hl = document.getElementById("health"); hl.innerHTML = "";
    for (const [n, h] of Object.entries(st.health.nodes)) {
      const li = document.createElement("li"); li.className = h.up ? "up" : "down";
      li.textContent = n + " (" + h.nation + ", link " + h.link + "): " + (h.up ? "up" : "DOWN") + ", rx " + h.rx_frames;
      hl.appendChild(li);
    }
  }
  document.getElementById("relay").textContent = st.relay;
  document.getElementById("updates").textContent = st.updates;
  document.getElementById("opened").textContent = st.opened;
  document.getElementById("unopened").textContent = st.unopened;
}
async function poll() {
  try {
    const r = await fetch("/state", {cache: "no-store"});
    draw(await r.json());
    document.getElementById("polls").textContent = ++polls;
  } catch (e) { /* the watcher restarting: try again */ }
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""


def _handler(watcher: Any) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/":
                body, ctype = PAGE.encode(), "text/html; charset=utf-8"
            elif self.path.split("?")[0] == "/state":
                body, ctype = json.dumps(watcher.snapshot()).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:   # quiet: the terminal shows the picture
            pass
    return Handler


def serve(watcher: Any, host: str, port: int) -> ThreadingHTTPServer:
    """Serve the page and ``/state`` in a daemon thread; returns the server
    (``server_address`` has the bound port when ``port`` is 0)."""
    server = ThreadingHTTPServer((host, port), _handler(watcher))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="trilink-livemap", daemon=True).start()
    return server
