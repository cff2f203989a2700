// Lifeline dispatcher console: an offline map of the area, live units and calls
// from the /api/v1/live websocket, a call form, and ranked recommendations with
// one-click assign. Plain ES2020, no build step; Leaflet is the only dependency.
// Signing in sets an HttpOnly session cookie: the script never holds the token.
"use strict";

(() => {
  // ---- labels (zh-CN first, English alongside) ----
  const UNIT_STATUS = {
    available: "可派 available",
    dispatched: "已派 dispatched",
    en_route: "出车 en route",
    on_scene: "现场 on scene",
    transporting: "转运 transporting",
    at_hospital: "到院 at hospital",
    out_of_service: "停用 out of service",
  };
  const INCIDENT_STATUS = {
    open: "待派 open", assigned: "已派 assigned", closed: "结束 closed", cancelled: "取消 cancelled",
  };
  const ASSIGNMENT_STATUS = {
    offered: "待确认 offered", accepted: "已接受 accepted", declined: "已拒绝 declined",
    cancelled: "已取消 cancelled", completed: "已完成 completed",
  };
  const CATEGORY = {
    chest_pain: "胸痛 chest pain", stroke: "卒中 stroke", trauma: "创伤 trauma",
    maternal: "孕产妇 maternal", neonatal: "新生儿 neonatal", other: "其他 other",
  };
  const CENTRE = {
    chest_pain: "胸痛中心", stroke: "卒中中心", trauma: "创伤中心",
    maternal: "危重孕产妇救治中心", neonatal: "危重新生儿救治中心",
  };
  const ZONE = { urban: "城区 urban", rural: "农村 rural" };
  const ROLE = { dispatcher: "调度员 dispatcher", city: "市级 city", integrator: "接口 integrator", admin: "管理员 admin" };
  const PRIORITY_COLOUR = { 1: "#c62828", 2: "#ef6c00", 3: "#1565c0", 4: "#607d8b" };

  // The console's scope: ?jurisdiction= narrows the signed-in user's own.
  const urlScope = new URLSearchParams(location.search).get("jurisdiction") || "";
  let scope = urlScope;

  // ---- small helpers ----
  const $ = (sel) => document.querySelector(sel);
  const label = (table, key) => table[key] || String(key ?? "–");
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  // el builds a DOM element; attrs: class, text, data-*, on<event> handlers, others as attributes.
  function el(tag, attrs = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k != null && k !== false) e.append(k);
    return e;
  }

  let skewMs = 0; // server clock minus ours, from the snapshot's server_time
  const now = () => Date.now() + skewMs;
  const km = (m) => (Number.isFinite(m) ? `${(m / 1000).toFixed(1)} km` : "–");
  const minutes = (s) => (!Number.isFinite(s) ? "–" : s < 60 ? "<1 min" : `${Math.round(s / 60)} min`);
  const clock = (t) => {
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? "–" : d.toLocaleTimeString("zh-CN", { hour12: false });
  };
  function duration(sec) {
    if (!Number.isFinite(sec)) return "–";
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return `${sec}s`;
    if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, "0")}s`;
    return `${Math.floor(sec / 3600)}h${String(Math.floor(sec / 60) % 60).padStart(2, "0")}m`;
  }
  const since = (t) => duration((now() - Date.parse(t)) / 1000);
  const hasPos = (p) => p != null && Number.isFinite(p.lat) && Number.isFinite(p.lon) &&
    Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180 && !(p.lat === 0 && p.lon === 0);
  const where = (i) => i.address ||
    (hasPos(i.location) ? `${i.location.lat.toFixed(5)}, ${i.location.lon.toFixed(5)}` : i.id);
  const activeIncident = (i) => i.status === "open" || i.status === "assigned";
  const activeAssignment = (a) => a.status === "offered" || a.status === "accepted";
  const byText = (a, b) => String(a).localeCompare(String(b), "zh-CN", { numeric: true });

  // ---- errors and the HTTP API ----
  function showError(msg) {
    $("#error-text").textContent = `${clock(Date.now())} ${msg}`;
    $("#error").hidden = false;
  }
  function clearError() {
    $("#error-text").textContent = "";
    $("#error").hidden = true;
  }

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // api calls the HTTP API with the session cookie. A 401 means the session
  // is gone: the sign-in form is shown (unless signIn, for the calls that
  // sign in and check the session themselves).
  async function api(method, path, body, { signIn = false } = {}) {
    let res;
    try {
      res = await fetch(path, {
        method,
        credentials: "same-origin",
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new APIError(0, "unavailable", `网络错误 network error (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!res.ok) {
      const err = data && data.error;
      const e = new APIError(res.status, (err && err.code) || `http_${res.status}`,
        (err && err.message) || `HTTP ${res.status} ${res.statusText}`);
      if (res.status === 401 && !signIn) sessionLost(`请重新登录 Please sign in again: ${e.message}`);
      throw e;
    }
    return data;
  }

  // ---- the session ----
  const session = { user: null }; // who is signed in: {username, role, jurisdiction, jurisdiction_name}

  function showLogin(msg) {
    $("#login").hidden = false;
    const err = $("#login-error");
    err.textContent = msg || "";
    err.hidden = !msg;
    $("#login-username").focus();
  }

  function signedIn(me) {
    session.user = me;
    scope = urlScope || me.jurisdiction || "";
    focusFitted = false;
    const who = $("#whoami");
    const jur = me.jurisdiction ? `${me.jurisdiction_name || ""} ${me.jurisdiction}`.trim() : "全域 whole area";
    who.textContent = `${me.username} · ${label(ROLE, me.role)} · ${jur}`;
    who.title = who.textContent;
    who.dataset.user = me.username;
    who.dataset.role = me.role;
    who.dataset.jurisdiction = me.jurisdiction || "";
    $("#session").hidden = false;
    $("#login").hidden = true;
    $("#login-error").hidden = true;
    clearError();
    feed.backoff = 1000;
    updateConn();
    loadArea();
    connect();
  }

  // sessionLost stops everything that needs a session and shows the form.
  function sessionLost(msg) {
    if (!session.user && !$("#login").hidden) return; // already signed out
    session.user = null;
    clearTimeout(feed.retry);
    clearTimeout(feed.watchdog);
    const ws = feed.ws;
    feed.ws = null;
    feed.live = false;
    if (ws) ws.close();
    clearAll();
    if (area.layer) area.layer.remove();
    area.layer = null;
    area.features = [];
    area.jurisdictions.clear();
    selected = null;
    recs = null;
    $("#recs").replaceChildren(el("p", { class: "empty", text: "选择或新建警情 Select or create a call" }));
    $("#recs-refresh").hidden = true;
    $("#assign-result").textContent = "";
    flush();
    $("#session").hidden = true;
    $("#whoami").textContent = "";
    clearError();
    updateConn();
    showLogin(msg);
  }

  // checkSession asks whether the session still holds (a refused websocket
  // looks like a network failure to the page); false once signed out.
  async function checkSession() {
    try {
      await api("GET", "/api/v1/me");
      return true;
    } catch (e) {
      return e.status !== 401;
    }
  }

  async function start() {
    try {
      signedIn(await api("GET", "/api/v1/me", undefined, { signIn: true }));
    } catch (e) {
      if (e.status === 401) {
        showLogin("");
        updateConn();
        return;
      }
      showError(`服务器不可达 server unreachable: ${e.message}`);
      setTimeout(start, 5000);
    }
  }

  // ---- the map ----
  const map = L.map("map", { boxZoom: false, zoomSnap: 0.25, minZoom: 3, maxZoom: 18 })
    .setView([30.5, 104.5], 6);
  // Panes, bottom to top: area basemap, rings and links, stations/hospitals, incidents, units.
  for (const [name, z] of [["area", 300], ["rings", 420], ["places", 560], ["incidents", 580], ["units", 610]]) {
    map.createPane(name).style.zIndex = z;
  }

  const HomeControl = L.Control.extend({
    options: { position: "topleft" },
    onAdd() {
      const b = L.DomUtil.create("button", "map-home leaflet-bar");
      b.type = "button";
      b.id = "fit-home";
      b.title = "回到辖区 Fit to jurisdiction";
      b.textContent = "⌂";
      L.DomEvent.disableClickPropagation(b);
      L.DomEvent.on(b, "click", () => fitFocus());
      return b;
    },
  });
  new HomeControl().addTo(map);

  // ---- the area (offline basemap) ----
  const area = { features: [], layer: null, jurisdictions: new Map() };
  let focus = new Set(); // ids of the jurisdictions this console is about
  let focusFitted = false;

  const featureID = (f) => {
    const p = f.properties || {};
    return String(p.id ?? f.id ?? p.adcode ?? "");
  };
  const parentID = (p) => String((p.parent && typeof p.parent === "object" ? p.parent.adcode ?? p.parent.id : p.parent) ?? "");

  function areaStyle(f) {
    const kind = f.properties.kind;
    if (kind === "urban_zone") {
      return { color: "#c9973a", weight: 0.6, fillColor: "#f4c66b", fillOpacity: 0.28, interactive: false };
    }
    if (focus.has(featureID(f))) {
      return { color: "#1f3a5f", weight: 2.5, fillColor: "#ffffff", fillOpacity: 0.7, interactive: false };
    }
    return { color: "#9aa5b1", weight: 1, dashArray: "4 3", fillColor: "#e3e7eb", fillOpacity: 0.35, interactive: false };
  }

  function placeMarker(f, latlng) {
    const p = f.properties;
    const hospital = p.kind === "hospital";
    const div = el("div", {
      class: `place ${p.kind}`,
      [hospital ? "data-hospital" : "data-station"]: featureID(f),
      text: hospital ? "+" : "",
    });
    const size = hospital ? 14 : 9;
    const m = L.marker(latlng, {
      pane: "places", keyboard: false,
      icon: L.divIcon({ html: div, className: "place-icon", iconSize: [size, size], iconAnchor: [size / 2, size / 2] }),
    });
    let tip = `<b>${esc(p.name || featureID(f))}</b><br>${hospital ? "医院 Hospital" : "站点 Station"} · ${esc(featureID(f))}`;
    if (hospital && Array.isArray(p.centres) && p.centres.length) {
      tip += `<br>${p.centres.map((c) => esc(CENTRE[c] ? `${CENTRE[c]} ${c}` : c)).join("<br>")}`;
    }
    return m.bindTooltip(tip, { direction: "top", offset: [0, -6] });
  }

  function drawArea(fc) {
    const kinds = new Set(["jurisdiction", "urban_zone", "station", "hospital"]);
    area.features = (fc && Array.isArray(fc.features) ? fc.features : []).filter((f) => f && f.properties);
    if (area.layer) area.layer.remove();
    area.jurisdictions.clear();
    area.layer = L.geoJSON(null, {
      pane: "area",
      style: areaStyle,
      pointToLayer: placeMarker,
      onEachFeature(f, layer) {
        if (f.properties.kind !== "jurisdiction") return;
        area.jurisdictions.set(featureID(f), layer);
        if (f.properties.name) {
          layer.bindTooltip(esc(f.properties.name), { permanent: true, direction: "center", className: "area-label", pane: "area" });
        }
      },
    });
    // Polygons before points, so the urban zones draw over their jurisdiction.
    const order = { jurisdiction: 0, urban_zone: 1, station: 2, hospital: 3 };
    const drawn = area.features.filter((f) => f.geometry && kinds.has(f.properties.kind))
      .sort((a, b) => order[a.properties.kind] - order[b.properties.kind]);
    for (const f of drawn) {
      try { area.layer.addData(f); } catch (e) { console.warn("area feature skipped", featureID(f), e); }
    }
    area.layer.addTo(map);
    refreshFocus(true);
  }

  async function loadArea() {
    if (!session.user) return;
    try {
      drawArea(await api("GET", "/api/v1/area"));
    } catch (e) {
      if (e.status === 401) return; // signed out: the form is up
      showError(`区域底图加载失败 area failed to load: ${e.message}`);
      setTimeout(loadArea, 5000);
    }
  }

  // The focus is the scope's jurisdiction (and its children), or else the one
  // most units belong to.
  function computeFocus() {
    const ids = new Set();
    if (scope) {
      ids.add(scope);
      for (const f of area.features) {
        if (f.properties.kind === "jurisdiction" && parentID(f.properties) === scope) ids.add(featureID(f));
      }
      return ids;
    }
    const count = new Map();
    let source = [...state.units.values()];
    if (!source.length) source = area.features.filter((f) => f.properties.kind === "unit").map((f) => f.properties);
    for (const u of source) if (u.jurisdiction) count.set(u.jurisdiction, (count.get(u.jurisdiction) || 0) + 1);
    let best = null;
    for (const [j, n] of count) if (best === null || n > count.get(best)) best = j;
    if (best !== null) ids.add(String(best));
    return ids;
  }

  function refreshFocus(areaChanged = false) {
    const next = computeFocus();
    const same = next.size === focus.size && [...next].every((j) => focus.has(j));
    if (same && !areaChanged) return;
    focus = next;
    if (area.layer) area.layer.resetStyle();
    const focused = [...focus].some((j) => area.jurisdictions.has(j));
    if (!focusFitted) {
      fitFocus();
      focusFitted = focused;
    }
  }

  function fitFocus() {
    let b = L.latLngBounds([]);
    for (const j of focus) {
      const layer = area.jurisdictions.get(j);
      if (layer) b.extend(layer.getBounds());
    }
    if (!b.isValid() && area.layer) b = area.layer.getBounds();
    if (!b.isValid()) {
      for (const r of unitLayers.values()) b.extend(r.marker.getLatLng());
    }
    // Not animated: Leaflet drops a zoom asked for while another zoom animates.
    if (b.isValid()) map.fitBounds(b, { padding: [16, 16], maxZoom: 14, animate: false });
  }

  // ---- live state ----
  const state = { units: new Map(), incidents: new Map(), assignments: new Map() };
  const unitLayers = new Map();     // unit id -> {marker, div, anim}
  const incidentLayers = new Map(); // incident id -> {marker, div, ring}
  const linkLayers = new Map();     // assignment id -> polyline (unit -> incident while going there)
  const newCallKey = () => "console-" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
  let callKey = newCallKey();       // idempotency key of the call being entered
  let selected = null;              // incident whose recommendations are shown
  let recs = null;                  // the recommendations shown

  function shortLabel(u) {
    const s = String(u.callsign || u.id);
    const runs = s.match(/[A-Za-z0-9]+/g); // "富顺1号 FS-01" -> "01"
    return (runs ? runs[runs.length - 1] : s).slice(-4);
  }

  function unitTooltip(u) {
    if (!u) return "";
    const p = u.position || {};
    const lines = [
      `<b>${esc(u.callsign || u.id)}</b> · ${esc(u.id)}`,
      esc(label(UNIT_STATUS, u.status)),
      `站点 Station: ${esc(u.station || "–")}`,
    ];
    // How long ago the server received the fix: the terminal's clock may be off.
    if (hasPos(p)) lines.push(`${Math.round(p.speed_kmh || 0)} km/h · 定位 fix ${esc(since(p.received || p.ts))} 前 ago`);
    if (u.clock_suspect) {
      const off = Number(u.clock_offset_s) || 0;
      lines.push(`<b class="clock-flag" data-clock-offset="${esc(off)}">⏱ 终端时钟${off > 0 ? "快" : "慢"} terminal clock ${esc(duration(Math.abs(off)))} ${off > 0 ? "fast" : "slow"}</b>`);
    }
    if (!u.online) lines.push("<b>离线 offline</b>");
    else if (u.stale) lines.push("<b>定位过期 position stale</b>");
    if (u.incident) lines.push(`警情 Incident: ${esc(u.incident)}`);
    if (u.video) {
      const cams = (u.video.cameras || []).map((c) => `${esc(c.ch)}:${esc(c.state)}`).join(" ");
      lines.push(`视频 Video: ${esc(u.video.uplink || "–")} ${cams}`);
    }
    if (Array.isArray(u.capabilities) && u.capabilities.length) lines.push(esc(u.capabilities.join(" · ")));
    return lines.join("<br>");
  }

  // glide moves a marker to ll over a short animation (jumps when hidden or far).
  // Nothing moves while the map zooms; zoomend puts every unit where it is.
  let zooming = false;
  map.on("zoomstart", () => { zooming = true; });
  map.on("zoomend", () => {
    zooming = false;
    for (const [id, r] of unitLayers) {
      cancelAnimationFrame(r.anim);
      const u = state.units.get(id);
      if (u && hasPos(u.position)) r.marker.setLatLng([u.position.lat, u.position.lon]);
    }
  });

  function glide(r, ll) {
    cancelAnimationFrame(r.anim);
    if (zooming) return;
    const from = r.marker.getLatLng();
    if (document.hidden || from.distanceTo(ll) > 3000) {
      r.marker.setLatLng(ll);
      return;
    }
    const t0 = performance.now();
    const step = (t) => {
      if (zooming) return;
      const k = Math.min(1, (t - t0) / 900);
      r.marker.setLatLng([from.lat + (ll[0] - from.lat) * k, from.lng + (ll[1] - from.lng) * k]);
      if (k < 1) r.anim = requestAnimationFrame(step);
    };
    r.anim = requestAnimationFrame(step);
  }

  function drawUnit(u) {
    let r = unitLayers.get(u.id);
    if (!hasPos(u.position)) { // not on the map until it has a position
      if (r) {
        cancelAnimationFrame(r.anim);
        r.marker.remove();
        unitLayers.delete(u.id);
      }
      return;
    }
    const ll = [u.position.lat, u.position.lon];
    if (!r) {
      const div = el("div", { class: "unit", "data-unit": u.id }, el("span"));
      const marker = L.marker(ll, {
        pane: "units", keyboard: false, riseOnHover: true,
        icon: L.divIcon({ html: div, className: "unit-icon", iconSize: [32, 18], iconAnchor: [16, 9] }),
      });
      marker.bindTooltip(() => unitTooltip(state.units.get(u.id)), { direction: "top", offset: [0, -9] });
      marker.addTo(map);
      r = { marker, div, anim: 0 };
      unitLayers.set(u.id, r);
    } else {
      glide(r, ll);
    }
    const d = r.div;
    d.dataset.status = u.status || "";
    d.dataset.lat = String(u.position.lat);
    d.dataset.lon = String(u.position.lon);
    d.dataset.online = String(!!u.online);
    d.dataset.stale = String(!!u.stale);
    d.dataset.clock = String(!!u.clock_suspect);
    d.classList.toggle("offline", !u.online);
    d.classList.toggle("stale", !!u.stale);
    d.classList.toggle("clock", !!u.clock_suspect);
    d.classList.toggle("candidate", isCandidate(u.id));
    d.firstChild.textContent = shortLabel(u);
    const tip = r.marker.getTooltip();
    if (tip && tip.isOpen()) tip.update();
  }

  function upsertUnit(u) {
    if (!u || !u.id) return;
    state.units.set(u.id, u);
    drawUnit(u);
    for (const a of state.assignments.values()) if (a.unit === u.id) drawLink(a);
    markDirty("units");
    if (recs) markDirty("recs");
  }

  function incidentTooltip(i) {
    if (!i) return "";
    return [
      `<b>P${esc(i.priority)} ${esc(label(CATEGORY, i.category))}</b> · ${esc(i.id)}`,
      esc(where(i)),
      `${esc(label(INCIDENT_STATUS, i.status))} · ${esc(label(ZONE, i.zone))} · 半径 radius ${esc(km(i.radius_m))}`,
      `${esc(clock(i.created_at))} (${esc(since(i.created_at))} 前 ago)`,
    ].join("<br>");
  }

  function removeIncidentLayers(id) {
    const r = incidentLayers.get(id);
    if (!r) return;
    r.marker.remove();
    if (r.ring) r.ring.remove();
    incidentLayers.delete(id);
  }

  function drawIncident(i) {
    if (!hasPos(i.location)) {
      removeIncidentLayers(i.id);
      return;
    }
    const ll = [i.location.lat, i.location.lon];
    let r = incidentLayers.get(i.id);
    if (!r) {
      const div = el("div", { class: "incident", "data-incident": i.id }, el("span"));
      const marker = L.marker(ll, {
        pane: "incidents", keyboard: false,
        icon: L.divIcon({ html: div, className: "incident-icon", iconSize: [22, 22], iconAnchor: [11, 11] }),
      });
      marker.bindTooltip(() => incidentTooltip(state.incidents.get(i.id)), { direction: "top", offset: [0, -11] });
      marker.on("click", () => selectIncident(i.id));
      marker.addTo(map);
      r = { marker, div, ring: null };
      incidentLayers.set(i.id, r);
    }
    r.marker.setLatLng(ll);
    r.div.dataset.status = i.status || "";
    r.div.dataset.priority = String(i.priority);
    r.div.dataset.lat = String(i.location.lat);
    r.div.dataset.lon = String(i.location.lon);
    r.div.classList.toggle("selected", i.id === selected);
    r.div.firstChild.textContent = String(i.priority ?? "?");
    const colour = PRIORITY_COLOUR[i.priority] || "#555";
    // The ring shows the radius the shown recommendations used (the search
    // may have widened beyond the call's first radius), else the call's.
    const radius = recs && recs.incident === i.id && recs.radius_m > 0 ? recs.radius_m : i.radius_m;
    if (activeIncident(i) && radius > 0) {
      if (!r.ring) {
        r.ring = L.circle(ll, { pane: "rings", radius, className: "radius-ring", interactive: false }).addTo(map);
        r.ring.getElement()?.setAttribute("data-ring", i.id);
      }
      r.ring.setLatLng(ll).setRadius(radius).setStyle({ color: colour, fillColor: colour });
      r.ring.getElement()?.setAttribute("data-radius", String(radius));
    } else if (r.ring) {
      r.ring.remove();
      r.ring = null;
    }
  }

  function upsertIncident(i) {
    if (!i || !i.id) return;
    state.incidents.set(i.id, i);
    drawIncident(i);
    for (const a of state.assignments.values()) if (a.incident === i.id) drawLink(a);
    markDirty("queue");
    if (recs && recs.incident === i.id) markDirty("recs");
  }

  // A dashed line from a unit to its call while it is on the way.
  function drawLink(a) {
    const u = state.units.get(a.unit);
    const i = state.incidents.get(a.incident);
    let line = linkLayers.get(a.id);
    const going = activeAssignment(a) && u && (u.status === "dispatched" || u.status === "en_route") &&
      hasPos(u.position) && i && activeIncident(i) && hasPos(i.location);
    if (!going) {
      if (line) line.remove();
      linkLayers.delete(a.id);
      return;
    }
    const pts = [[u.position.lat, u.position.lon], [i.location.lat, i.location.lon]];
    const colour = a.status === "offered" ? "#d49b00" : "#f57c00";
    if (line) line.setLatLngs(pts).setStyle({ color: colour });
    else linkLayers.set(a.id, L.polyline(pts, { pane: "rings", className: "link", color: colour, weight: 2, dashArray: "6 6", interactive: false }).addTo(map));
  }

  function upsertAssignment(a) {
    if (!a || !a.id) return;
    if (activeAssignment(a)) state.assignments.set(a.id, a);
    else state.assignments.delete(a.id); // only assignments holding a unit are kept
    drawLink(a);
    markDirty("queue");
    if (selected && a.incident === selected) scheduleRecsReload();
  }

  function clearAll() {
    for (const r of unitLayers.values()) { cancelAnimationFrame(r.anim); r.marker.remove(); }
    for (const id of [...incidentLayers.keys()]) removeIncidentLayers(id);
    for (const l of linkLayers.values()) l.remove();
    unitLayers.clear();
    linkLayers.clear();
    state.units.clear();
    state.incidents.clear();
    state.assignments.clear();
  }

  function applySnapshot(s) {
    const t = Date.parse(s.server_time);
    if (Number.isFinite(t)) skewMs = t - Date.now();
    clearAll();
    for (const u of s.units || []) upsertUnit(u);
    for (const i of s.incidents || []) upsertIncident(i);
    for (const a of s.assignments || []) upsertAssignment(a);
    refreshFocus();
    if (selected) loadRecs();
    flush();
  }

  // Closed and cancelled calls stay on the map, dimmed, for a while.
  function pruneIncidents() {
    for (const i of [...state.incidents.values()]) {
      if (!activeIncident(i) && i.id !== selected && now() - Date.parse(i.updated_at || i.created_at) > 30 * 60e3) {
        state.incidents.delete(i.id);
        removeIncidentLayers(i.id);
      }
    }
  }

  // ---- panel rendering (coalesced: updates can arrive many times a second) ----
  const dirty = new Set();
  let flushTimer = 0;
  function markDirty(what) {
    dirty.add(what);
    if (!flushTimer) flushTimer = setTimeout(flush, 250);
  }
  function flush() {
    clearTimeout(flushTimer);
    flushTimer = 0;
    if (dirty.has("units")) renderUnits();
    if (dirty.has("queue")) renderQueue();
    if (dirty.has("recs")) renderRecStatus();
    dirty.clear();
    tickSince();
  }

  const STATUS_ORDER = Object.keys(UNIT_STATUS);
  const statusRank = (s) => (STATUS_ORDER.includes(s) ? STATUS_ORDER.indexOf(s) : STATUS_ORDER.length);

  function renderUnits() {
    const units = [...state.units.values()];
    const counts = new Map();
    let offline = 0, stale = 0, nofix = 0;
    for (const u of units) {
      counts.set(u.status, (counts.get(u.status) || 0) + 1);
      if (!u.online) offline++;
      else if (u.stale) stale++;
      if (!hasPos(u.position)) nofix++;
    }
    const parts = [];
    for (const s of [...STATUS_ORDER, ...[...counts.keys()].filter((s) => !STATUS_ORDER.includes(s))]) {
      const n = counts.get(s) || 0;
      if (n || s === "available") {
        parts.push(el("span", { class: "count", "data-status": s, "data-count": n }, el("i", { class: "dot" }), `${label(UNIT_STATUS, s)} ${n}`));
      }
    }
    if (offline) parts.push(el("span", { class: "count warn", "data-count": offline, "data-flag": "offline" }, `离线 offline ${offline}`));
    if (stale) parts.push(el("span", { class: "count warn", "data-count": stale, "data-flag": "stale" }, `过期 stale ${stale}`));
    if (nofix) parts.push(el("span", { class: "count warn", "data-count": nofix, "data-flag": "no-position" }, `无定位 no position ${nofix}`));
    const sep = () => document.createTextNode(" · ");
    $("#units-summary").replaceChildren(...parts.flatMap((p, k) => (k ? [sep(), p] : [p])));
    $("#units-summary").dataset.total = String(units.length);

    units.sort((a, b) => statusRank(a.status) - statusRank(b.status) || byText(a.callsign || a.id, b.callsign || b.id));
    $("#units").replaceChildren(...units.map((u) => {
      const flags = [!u.online && "离线 offline", u.online && u.stale && "过期 stale", !hasPos(u.position) && "无定位 no position"].filter(Boolean);
      const p = u.position;
      return el("li", {
        class: `unit-row${u.online && !u.stale ? "" : " dim"}`, "data-unit-row": u.id, "data-status": u.status, tabindex: 0,
      },
      el("i", { class: "dot" }),
      el("div", { class: "main" },
        el("b", { text: u.callsign || u.id }),
        el("small", { text: [label(UNIT_STATUS, u.status), u.station, u.incident].filter(Boolean).join(" · ") })),
      el("div", { class: "side" },
        flags.length ? el("small", { class: "warn", text: flags.join(" · ") }) : null,
        hasPos(p) ? el("small", { text: `${Math.round(p.speed_kmh || 0)} km/h` }) : null,
        u.last_seen ? el("small", { "data-since": u.last_seen }) : null));
    }));
  }

  function renderQueue() {
    const list = [...state.incidents.values()].filter(activeIncident)
      .sort((a, b) => (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0));
    const byIncident = new Map();
    for (const a of state.assignments.values()) {
      const u = state.units.get(a.unit);
      const name = `${u ? u.callsign || u.id : a.unit}${a.status === "offered" ? " ?" : ""}`;
      byIncident.set(a.incident, [...(byIncident.get(a.incident) || []), name]);
    }
    const rows = list.map((i) => el("li", {
      class: `inc-row${i.id === selected ? " selected" : ""}`,
      "data-incident-row": i.id, "data-status": i.status, "data-priority": i.priority, tabindex: 0,
    },
    el("span", { class: `prio p${i.priority}`, text: `P${i.priority}` }),
    el("div", { class: "main" },
      el("b", { text: where(i) }),
      el("small", { text: [label(CATEGORY, i.category), label(ZONE, i.zone), i.id].join(" · ") }),
      byIncident.has(i.id) ? el("small", { class: "units-on", text: `车辆 units: ${byIncident.get(i.id).join(", ")}` }) : null),
    el("div", { class: "side" },
      el("span", { class: `badge ${i.status}`, text: label(INCIDENT_STATUS, i.status) }),
      el("small", { "data-since": i.created_at }))));
    $("#queue").replaceChildren(...(rows.length ? rows : [el("li", { class: "empty", text: "无待处理警情 No open calls" })]));
  }

  function tickSince() {
    for (const e of document.querySelectorAll("[data-since]")) e.textContent = since(e.dataset.since);
  }

  // ---- recommendations and assignment ----
  let recsToken = 0;
  let recsReloadTimer = 0;
  const isCandidate = (unit) => !!(recs && recs.candidates && recs.candidates.some((c) => c.unit === unit));

  function selectIncident(id, given) {
    if (id !== selected) $("#assign-result").textContent = "";
    selected = id;
    for (const [iid, r] of incidentLayers) r.div.classList.toggle("selected", iid === id);
    markDirty("queue");
    $("#recs-refresh").hidden = !id;
    if (given) {
      recsToken++; // an older request still in flight must not overwrite these
      $("#recs").classList.remove("loading");
      showRecs(given);
    } else {
      loadRecs();
    }
  }

  function scheduleRecsReload() {
    clearTimeout(recsReloadTimer);
    recsReloadTimer = setTimeout(loadRecs, 300);
  }

  async function loadRecs() {
    const id = selected;
    if (!id) return;
    const token = ++recsToken;
    $("#recs").classList.add("loading");
    try {
      const r = await api("GET", `/api/v1/incidents/${encodeURIComponent(id)}/recommendations`);
      if (token === recsToken) showRecs(r);
    } catch (e) {
      if (token === recsToken) showError(`推荐获取失败 recommendations for ${id}: ${e.message}`);
    } finally {
      if (token === recsToken) $("#recs").classList.remove("loading");
    }
  }

  function showRecs(r) {
    const before = recs && recs.incident;
    recs = r && typeof r === "object" ? r : { candidates: [], excluded: [] };
    if (!recs.incident) recs.incident = selected;
    for (const id of new Set([before, recs.incident])) {
      const x = id && state.incidents.get(id);
      if (x) drawIncident(x); // its ring follows the radius used
    }
    const i = state.incidents.get(recs.incident);
    const cands = Array.isArray(recs.candidates) ? recs.candidates : [];
    const excl = Array.isArray(recs.excluded) ? recs.excluded : [];
    const head = el("div", { class: "recs-head", "data-incident": recs.incident },
      el("b", { text: i ? `P${i.priority} ${label(CATEGORY, i.category)} · ${where(i)}` : recs.incident }),
      el("small", {
        text: [recs.incident, i && label(INCIDENT_STATUS, i.status), `半径 radius ${km(recs.radius_m ?? (i && i.radius_m))}`,
          `生成 generated ${clock(recs.generated_at)}`].filter(Boolean).join(" · "),
      }));
    const rows = cands.map((c) => el("li", {
      class: `rec${c.within_radius ? "" : " outside"}`, "data-rec-unit": c.unit, "data-rank": c.rank,
    },
    el("span", { class: "rank", text: String(c.rank ?? "") }),
    el("div", { class: "main" },
      el("b", { text: c.callsign || c.unit }),
      el("small", { text: [c.station, c.unit].filter(Boolean).join(" · ") }),
      el("div", { class: "nums" },
        el("span", { class: "dist", text: km(c.distance_m) }),
        c.road_m > 0 ? el("span", { class: "road", text: `路程 road ${km(c.road_m)}` }) : null,
        el("span", { class: "eta", text: `ETA ${minutes(c.eta_s)}` }),
        c.within_radius ? null : el("span", { class: "badge warn", text: "超出半径 outside radius" }),
        el("span", { class: "live-status" })),
      Array.isArray(c.reasons) && c.reasons.length
        ? el("ul", { class: "reasons" }, c.reasons.map((x) => el("li", { text: x }))) : null),
    el("button", { type: "button", class: "assign", "data-assign": c.unit, text: "派车 Assign" })));
    const list = rows.length ? el("ol", { class: "cands" }, rows)
      : el("p", { class: "empty", text: "无可推荐车辆 No unit to recommend" });
    const excluded = excl.length ? el("details", { class: "excluded" },
      el("summary", { text: `未推荐 Excluded (${excl.length})` }),
      el("ul", {}, excl.map((x) => el("li", { "data-excluded-unit": x.unit },
        el("b", { text: (state.units.get(x.unit) || {}).callsign || x.unit }), ` ${x.reason || ""}`)))) : null;
    $("#recs").replaceChildren(head, list, excluded || "");
    $("#recs").dataset.incident = recs.incident || "";
    renderRecStatus();
    for (const [id, u] of unitLayers) u.div.classList.toggle("candidate", isCandidate(id));
  }

  // The live status of each recommended unit, so a dispatcher sees one that has gone since.
  function renderRecStatus() {
    for (const row of document.querySelectorAll("#recs [data-rec-unit]")) {
      const u = state.units.get(row.dataset.recUnit);
      const s = row.querySelector(".live-status");
      if (!u) { s.textContent = ""; continue; }
      s.dataset.status = u.status;
      s.textContent = label(UNIT_STATUS, u.status) + (u.online ? (u.stale ? " · 过期 stale" : "") : " · 离线 offline");
      row.classList.toggle("gone", u.status !== "available");
    }
  }

  async function assign(unit) {
    const incident = selected;
    if (!incident) return;
    const buttons = document.querySelectorAll("#recs [data-assign]");
    buttons.forEach((b) => { b.disabled = true; });
    const result = $("#assign-result");
    result.className = "pending";
    result.textContent = `派车中 assigning ${unit}…`;
    try {
      const a = await api("POST", `/api/v1/incidents/${encodeURIComponent(incident)}/assignments`, { unit });
      clearError();
      if (a && a.consent && !a.id) { // 202: the unit's county must consent first
        result.className = "pending";
        result.textContent = `征求同意 Consent asked of ${a.consent.from} for ${unit} · ${a.consent.id} · 至 until ${clock(a.consent.expires_at)}`;
        return;
      }
      upsertAssignment(a);
      result.className = "ok";
      result.textContent = `已派车 Assigned ${unit} → ${incident} · ${a && a.id ? a.id : ""} ${a ? label(ASSIGNMENT_STATUS, a.status) : ""}`;
    } catch (e) {
      result.className = "fail";
      result.textContent = `派车失败 Not assigned: ${unit}`;
      showError(e.code === "conflict" ? `冲突 Conflict: ${e.message}` : `派车失败 assign ${unit} failed: ${e.message}`);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      if (selected === incident) loadRecs();
    }
  }

  // ---- the call form ----
  const form = $("#call-form");
  const latInput = $("#call-lat");
  const lonInput = $("#call-lon");
  let picking = false;
  let pickPin = null;

  function setPicking(on) {
    picking = on;
    map.getContainer().classList.toggle("picking", on);
    $("#call-pick").setAttribute("aria-pressed", String(on));
  }

  function showPin() {
    const ll = { lat: parseFloat(latInput.value), lon: parseFloat(lonInput.value) };
    if (!hasPos(ll)) {
      if (pickPin) pickPin.remove();
      pickPin = null;
      return;
    }
    if (!pickPin) {
      pickPin = L.marker([ll.lat, ll.lon], {
        pane: "incidents", keyboard: false, interactive: false,
        icon: L.divIcon({ html: el("div", { class: "pick-pin", "data-pick": "" }), className: "pick-icon", iconSize: [20, 20], iconAnchor: [10, 10] }),
      }).addTo(map);
    } else {
      pickPin.setLatLng([ll.lat, ll.lon]);
    }
  }

  map.on("click", (e) => {
    if (!picking && !e.originalEvent.shiftKey) return;
    latInput.value = e.latlng.lat.toFixed(6);
    lonInput.value = e.latlng.lng.toFixed(6);
    setPicking(false);
    showPin();
    $("#call-address").focus();
  });
  $("#call-pick").addEventListener("click", () => setPicking(!picking));
  latInput.addEventListener("input", showPin);
  lonInput.addEventListener("input", showPin);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && picking) setPicking(false); });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const lat = parseFloat(latInput.value);
    const lon = parseFloat(lonInput.value);
    if (!hasPos({ lat, lon })) {
      showError("请先选择位置 Set the location first: 📍 then click the map, or shift-click the map");
      return;
    }
    const body = {
      location: { lat, lon },
      address: $("#call-address").value.trim(),
      priority: Number($("#call-priority").value),
      category: $("#call-category").value,
      source: "console",
    };
    const submit = $("#call-submit");
    submit.disabled = true;
    try {
      body.external_id = callKey; // a retried submission of the same call is taken once
      const res = await api("POST", "/api/v1/incidents", body);
      const inc = res; // the created incident, with its recommendations
      if (!inc || !inc.id) throw new APIError(0, "internal", "服务器未返回警情 no incident in the reply");
      upsertIncident(inc);
      clearError();
      form.reset();
      callKey = newCallKey();
      showPin();
      selectIncident(inc.id, res.recommendations);
    } catch (err) {
      showError(`建立警情失败 Call not created: ${err.message}`);
    } finally {
      submit.disabled = false;
    }
  });

  // ---- panel events (delegated; no inline handlers) ----
  $("#error-close").addEventListener("click", clearError);
  $("#recs-refresh").addEventListener("click", () => loadRecs());
  $("#recs").addEventListener("click", (e) => {
    const b = e.target.closest("[data-assign]");
    if (b && !b.disabled) assign(b.dataset.assign);
  });
  const activate = (root, attr, fn) => {
    const handler = (e) => {
      if (e.type === "keydown" && e.key !== "Enter") return;
      const row = e.target.closest(`[${attr}]`);
      if (row) fn(row.getAttribute(attr));
    };
    root.addEventListener("click", handler);
    root.addEventListener("keydown", handler);
  };
  activate($("#queue"), "data-incident-row", (id) => {
    selectIncident(id);
    const i = state.incidents.get(id);
    if (i && hasPos(i.location)) map.panTo([i.location.lat, i.location.lon]);
  });
  activate($("#units"), "data-unit-row", (id) => {
    const r = unitLayers.get(id);
    if (!r) return;
    map.panTo(r.marker.getLatLng());
    r.marker.openTooltip();
  });

  // ---- the live feed ----
  const feed = { ws: null, live: false, everLive: false, lastMsg: 0, backoff: 1000, retryAt: 0, watchdog: 0, retry: 0 };

  function connect() {
    if (!session.user || feed.ws) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = scope ? `?jurisdiction=${encodeURIComponent(scope)}` : "";
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/v1/live${q}`);
    } catch (e) {
      reconnectLater();
      return;
    }
    feed.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      // A server that accepts but sends no snapshot is as good as down.
      feed.watchdog = setTimeout(() => { if (!feed.live) ws.close(); }, 10000);
    });
    ws.addEventListener("message", (ev) => {
      if (ws !== feed.ws) return;
      feed.lastMsg = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      for (const m of Array.isArray(msg) ? msg : [msg]) {
        try { handle(m); } catch (err) { console.error("live message", m, err); }
      }
    });
    ws.addEventListener("close", async (ev) => {
      clearTimeout(feed.watchdog);
      if (ws !== feed.ws) return;
      feed.ws = null;
      feed.live = false;
      updateConn();
      if (!session.user) return;
      if (ev.code === 4401) { // the server ended the feed with the session
        sessionLost("会话已结束，请重新登录 Session ended: please sign in again");
        return;
      }
      if (ev.code === 4409) feed.backoff = 1000; // permissions changed: a new feed at once
      if (ev.code === 4429) { // too many consoles open: try again slowly
        showError("打开的控制台过多，请关闭一个 Too many consoles open: close one");
        feed.backoff = 15000;
      }
      // A refused upgrade (401/403) looks like a network failure: ask before retrying.
      if (!opened && !(await checkSession())) return;
      reconnectLater();
    });
  }

  function reconnectLater() {
    if (!session.user) return;
    const delay = feed.backoff;
    feed.backoff = Math.min(15000, feed.backoff * 2);
    feed.retryAt = Date.now() + delay;
    clearTimeout(feed.retry);
    feed.retry = setTimeout(connect, delay);
  }

  function handle(m) {
    switch (m && m.type) {
      case "snapshot":
        applySnapshot(m);
        clearTimeout(feed.watchdog);
        feed.live = true;
        feed.everLive = true;
        feed.backoff = 1000;
        updateConn();
        break;
      case "batch": // deltas come batched, in order: a unit's latest state, every other event
        for (const e of m.events || []) {
          try { handle(e); } catch (err) { console.error("live message", e, err); }
        }
        break;
      case "unit": upsertUnit(m.unit); break;
      case "incident": upsertIncident(m.incident); break;
      case "assignment": upsertAssignment(m.assignment); break;
      default: break; // kpi and newer message types: not shown yet
    }
  }

  function updateConn() {
    const c = $("#conn");
    if (!session.user) {
      c.className = "down";
      c.textContent = "● 未登录 signed out";
      document.body.classList.add("feed-down");
      $("#feed-banner").hidden = true;
      return;
    }
    const age = feed.lastMsg ? (Date.now() - feed.lastMsg) / 1000 : NaN;
    if (feed.live) {
      const quiet = age > 30;
      c.className = quiet ? "live quiet" : "live";
      c.textContent = quiet ? `● 实时 live · ${duration(age)} 无消息 no message` : "● 实时 live";
    } else {
      const retry = Math.max(0, Math.ceil((feed.retryAt - Date.now()) / 1000));
      c.className = "down";
      c.textContent = feed.everLive
        ? `● 重连中 reconnecting · 最后消息 last message ${duration(age)} 前 ago${feed.ws ? "" : ` · 重试 retry ${retry}s`}`
        : `● 连接中 connecting${feed.ws ? "" : ` · 重试 retry ${retry}s`}`;
    }
    c.dataset.lastMessage = feed.lastMsg ? new Date(feed.lastMsg).toISOString() : "";
    document.body.classList.toggle("feed-down", !feed.live);
    const banner = $("#feed-banner");
    banner.hidden = feed.live;
    banner.textContent = feed.everLive
      ? `连接中断，地图未更新 Connection lost: the map is NOT updating (last message ${duration(age)} ago)`
      : "正在连接实时数据 Connecting to the live feed…";
  }

  let ticks = 0;
  setInterval(() => {
    updateConn();
    tickSince();
    if (++ticks % 60 === 0) pruneIncidents();
  }, 1000);

  // ---- signing in and out ----
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const user = $("#login-username");
    const pass = $("#login-password");
    const username = user.value.trim();
    const password = pass.value;
    const fail = (msg) => {
      const err = $("#login-error");
      err.textContent = msg;
      err.hidden = false;
    };
    if (!username || !password) {
      fail("请输入用户名和密码 Enter your username and password");
      (username ? pass : user).focus();
      return;
    }
    const submit = $("#login-submit");
    submit.disabled = true;
    try {
      // The reply's token is not kept: the browser holds the HttpOnly cookie.
      await api("POST", "/api/v1/sessions", { username, password }, { signIn: true });
      pass.value = "";
      signedIn(await api("GET", "/api/v1/me", undefined, { signIn: true }));
    } catch (err) {
      pass.value = "";
      fail(`登录失败 Sign-in failed: ${err.message}`);
      pass.focus();
    } finally {
      submit.disabled = false;
    }
  });

  $("#logout").addEventListener("click", async () => {
    const b = $("#logout");
    b.disabled = true;
    try {
      await api("DELETE", "/api/v1/sessions", undefined, { signIn: true });
    } catch (e) {
      if (e.status !== 401) { // still signed in: say so rather than pretend
        showError(`退出失败 Sign-out failed: ${e.message}`);
        return;
      }
    } finally {
      b.disabled = false;
    }
    sessionLost("");
  });

  renderUnits();
  renderQueue();
  updateConn();
  start();
})();
