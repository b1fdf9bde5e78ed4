/* Goldfish agent desktop: the screen-pop card, pushed by server-sent events.
 * Plain JS, no build step, no third-party code. Everything shown comes from the
 * REST API (same-origin session + CSRF token) or from /agent/events.
 * Data is always inserted as text (never as HTML). */
(function () {
  "use strict";

  var CSRF = document.querySelector('meta[name="csrf-token"]').content;
  var FLAG_TEXT = {
    repeat_contact: "Repeat contact",
    recent_complaint: "Recent complaint",
    vip: "VIP",
    do_not_call: "Do not call",
    new_customer: "New customer"
  };
  var FLAG_HINT = {
    repeat_contact: "They have contacted us about this 2+ times in 30 days: own it, don't start over.",
    recent_complaint: "Unhappy with us recently: acknowledge it.",
    vip: "VIP customer.",
    do_not_call: "No outbound calls: offer e-mail or SMS for follow-ups.",
    new_customer: "Joined in the last 30 days."
  };
  var KIND_TEXT = {
    phone: "Phone number", email: "E-mail address", account: "Account number", customer_id: "Who they are (signed in)"
  };
  var IDENT_KINDS = { phone: true, email: true, account: true };
  var VIA_TEXT = { agent: "by an agent on a call", ivr: "by the IVR", record: "on record" };
  var DRAFT = "goldfish-draft:", DRAFT_TTL_MS = 4 * 3600 * 1000;  // as the server keeps a call card
  var EVENT_TEXT = { ringing: "Ringing", connected: "On call" };

  var reasons = {};          // code -> label
  var current = null;        // {interactionId, callId, channel, phone, email, account, card, ended, saved, dirty}
  var waiting = [];          // calls that arrived during a wrap-up, oldest first: never replace it
  var online = null;         // the event stream: true up, false down (calls cannot pop), null connecting
  var $ = function (id) { return document.getElementById(id); };

  // ---- small helpers -------------------------------------------------------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    var kids = Array.prototype.slice.call(arguments, 2);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") el.className = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : v);
      });
    }
    kids.forEach(function add(kid) {
      if (kid === null || kid === undefined || kid === false) return;
      if (Array.isArray(kid)) kid.forEach(add);
      else el.appendChild(typeof kid === "string" || typeof kid === "number" ? document.createTextNode(String(kid)) : kid);
    });
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function human(s) { return String(s).replace(/_/g, " "); }
  // Where a fact came from: the channel it was told on, or a bulk import (issue 15).
  function factSource(source) {
    if (!source) return "";
    if (source.imported_from) return "from import, ";
    return source.channel ? source.channel + ", " : "";
  }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso), now = new Date();
    var days = Math.floor((now - d) / 86400000);
    var date = d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
    var time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    if (days < 1 && d.getDate() === now.getDate()) return "today " + time;
    if (days < 2) return "yesterday " + time;
    return date + " (" + days + " d ago)";
  }

  function api(method, url, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRFToken": CSRF } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = { detail: t }; }
        if (!r.ok) { var err = new Error("HTTP " + r.status); err.status = r.status; err.data = data; throw err; }
        return data;
      });
    });
  }
  function errorText(err) {
    if (!err.data) return "Something went wrong (" + err.message + ").";
    if (err.data.detail && Object.keys(err.data).length === 1) return err.data.detail;
    return Object.keys(err.data).filter(function (k) { return k !== "detail"; }).map(function (k) {
      var v = err.data[k];
      return human(k) + ": " + (Array.isArray(v) ? v.map(function (x) { return typeof x === "string" ? x : JSON.stringify(x); }).join(" ") : JSON.stringify(v));
    }).join("; ") || err.data.detail;
  }

  // ---- status bar ----------------------------------------------------------
  function setStatus(text, kind) {
    var el = $("status");
    el.textContent = text;
    el.className = "status status-" + kind;
  }

  function showOnly(id) {
    $("ready").hidden = id !== "ready";
    $("contact").hidden = id !== "contact";
    if (id !== "results") $("results").hidden = true;
  }

  function goReady() {
    current = null;
    document.body.classList.remove("on-contact");
    showOnly("ready");
    readyStatus();
  }
  function readyStatus() {
    if (current) return;
    var up = online === true;
    $("ready-title").textContent = up ? "Ready for a contact" : online === null ? "Connecting…" : "Not ready — calls will not pop";
    $("ready-text").textContent = up ? "Calls put through to you pop here by themselves." : "Calls can pop only once the connection to the call stream is up.";
    $("ready").classList.toggle("not-ready", !up);
    setStatus(up ? "Ready for a contact" : online === null ? "Connecting…" : "Not ready — disconnected", up ? "ready" : online === null ? "ended" : "error");
    document.title = (up ? "Ready" : "Not ready") + " · Goldfish";
  }

  // ---- connection state: impossible to miss ------------------------------------
  function setOnline(up) {
    online = up;
    $("offline").hidden = up;
    document.body.classList.toggle("offline", !up);
    if (up) $("link").title = "Connection to the call stream: live";
    readyStatus();
  }

  // ---- the desk: one contact in wrap-up at a time, new calls wait -------------------
  function store() { try { return window.localStorage; } catch (e) { return null; } }
  function draftPut(ctx, form) {
    var s = store();
    if (!s || !ctx || ctx.saved) return;
    try { s.setItem(DRAFT + ctx.interactionId, JSON.stringify({ at: ctx.openedAt, ctx: ctx, form: form })); } catch (e) { /* full or private */ }
  }
  function draftSave() { if (current) draftPut(current, snapshotWrapUp()); }
  function draftDrop(id) { var s = store(); if (s) try { s.removeItem(DRAFT + id); } catch (e) { /* ignore */ } }
  function draftsAll() {
    var s = store(), out = [];
    if (!s) return out;
    for (var i = s.length - 1; i >= 0; i--) {
      var key = s.key(i);
      if (!key || key.indexOf(DRAFT) !== 0) continue;
      var d = null;
      try { d = JSON.parse(s.getItem(key)); } catch (e) { d = null; }
      if (!d || !d.ctx || Date.now() - (d.at || 0) > DRAFT_TTL_MS) { s.removeItem(key); continue; }
      out.push(d);
    }
    return out.sort(function (a, b) { return a.at - b.at; });
  }
  function draftsClear() { draftsAll().forEach(function (d) { draftDrop(d.ctx.interactionId); }); }
  function busy() { return !!current && !current.saved; }
  function nameOf(ctx) {
    var c = ctx.card && ctx.card.customer;
    if (c) return c.preferred_name || c.display_name;
    if (ctx.card && ctx.card.match === "ambiguous") return "a caller sharing " + (ctx.phone || "a number");
    return ctx.phone ? "unknown caller " + ctx.phone : ctx.withheld ? "a caller with a withheld number" : "an unknown caller";
  }
  function offer(ctx) {
    ctx.openedAt = ctx.openedAt || Date.now();
    if (busy() && current.interactionId !== ctx.interactionId) { enqueue(ctx); return; }
    showContact(ctx);
  }
  function enqueue(ctx) {
    var i = waiting.findIndex(function (w) { return w.interactionId === ctx.interactionId; });
    if (i >= 0) waiting[i] = ctx; else waiting.push(ctx);
    draftPut(ctx, null);
    renderQueued();
    if (i < 0) cue();
  }
  function renderQueued() {
    var n = waiting.length;
    $("queued").hidden = !n;
    if (n) $("queued-text").textContent = (n === 1 ? "Next call waiting: " : n + " calls waiting — next: ") + nameOf(waiting[0]) + (waiting[0].ended ? " (call ended)" : "") + ".";
    $("done").textContent = n ? "Next contact (" + n + " waiting)" : "Next contact";
    document.body.classList.toggle("has-queue", n > 0);
  }
  function cue() {
    var q = $("queued");
    q.classList.remove("flash");
    void q.offsetWidth;  // restart the animation
    q.classList.add("flash");
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      var ac = cue.ac || (cue.ac = new Ctx()), o = ac.createOscillator(), g = ac.createGain();
      o.frequency.value = 880; g.gain.value = 0.05;
      o.connect(g); g.connect(ac.destination);
      o.start(); o.stop(ac.currentTime + 0.15);
    } catch (e) { /* no sound: the banner still flashes */ }
  }
  function nextContact() {
    if (current && !current.saved && current.dirty &&
        !window.confirm("Discard the unsaved wrap-up for " + nameOf(current) + "? It will not be recorded.")) return;
    if (current) {
      var id = current.interactionId;
      draftDrop(id);
      try { sessionStorage.setItem("goldfish-dismissed", id); } catch (e) { /* private mode */ }
      api("POST", "/agent/dismiss", { interaction_id: id }).catch(function () { /* best effort */ });
    }
    var next = waiting.shift();
    renderQueued();
    current = null;
    if (next) showContact(next);
    else { goReady(); $("main").focus(); }
  }

  // ---- the card ------------------------------------------------------------
  function showContact(ctx, form) {
    current = ctx;
    ctx.openedAt = ctx.openedAt || Date.now();
    var card = ctx.card;
    document.body.classList.add("on-contact");
    $("results").hidden = true;
    renderWho();
    renderMemory();
    resetWrapUp();
    if (form) restoreWrapUp(form);
    $("draft-note").hidden = !ctx.dirty;
    draftSave();
    showOnly("contact");
    updateStatus();
    var name = card.customer ? (card.customer.preferred_name || card.customer.display_name) : "Unknown caller";
    document.title = name + " · Goldfish";
    var active = document.activeElement;
    if (!active || active === document.body || !/INPUT|TEXTAREA|SELECT/.test(active.tagName)) {
      var heading = document.querySelector("#who h1");
      if (heading) heading.focus();
    }
  }

  function updateStatus() {
    if (!current) return;
    if (current.ended) setStatus("Call ended · wrap up", "ended");
    else if (current.callId) setStatus((EVENT_TEXT[current.event] || "On call") + (current.phone ? " · " + current.phone : ""), current.event === "ringing" ? "ringing" : "oncall");
    else setStatus("On a " + human(current.channel) + " contact", "oncall");
  }

  function section(title, body, cls) {
    return h("section", { class: "block " + (cls || "") }, h("h2", null, title), body);
  }

  function onCallVerified(kind) { return ((current.card.verified_on_call) || []).indexOf(kind) >= 0; }
  function spoken(kind) { return (KIND_TEXT[kind] || human(kind)).toLowerCase(); }
  function ordinal(n) { var s = ["th", "st", "nd", "rd"], v = n % 100; return n + (s[(v - 20) % 10] || s[v] || s[0]); }

  function renderWho() {
    var card = current.card, who = clear($("who"));
    var c = card.customer;
    var contactLine = h("div", { class: "contact-line" },
      h("span", { class: "chip chan" }, human(current.channel || "phone")),
      current.phone ? h("span", { class: "mono" }, current.phone) : null,
      current.withheld && !current.phone ? h("span", { class: "chip", id: "c-withheld" }, "Number withheld") : null,
      current.email ? h("span", { class: "mono" }, current.email) : null,
      current.account ? h("span", { class: "mono" }, "acct " + current.account) : null,
      current.callId ? h("span", { class: "muted" }, "call " + current.callId) : null,
      current.ended ? h("span", { class: "chip ended" }, "ended") : null
    );
    who.appendChild(contactLine);

    if (c) {
      who.appendChild(h("h1", { id: "c-name", class: "name", tabindex: "-1" }, c.display_name || "(no name)"));
      var sub = [];
      if (c.preferred_name && c.preferred_name !== c.display_name) sub.push(h("span", null, "Likes to be called ", h("strong", { id: "c-preferred" }, c.preferred_name)));
      if (c.language) sub.push(h("span", { class: "chip" }, "lang " + c.language));
      who.appendChild(h("div", { class: "sub" }, sub));
    } else if (card.match === "ambiguous") {
      who.appendChild(h("h1", { id: "c-name", class: "name", tabindex: "-1" }, "Who is calling?"));
      who.appendChild(h("p", { class: "sub" }, card.candidates.length + " customers share this " + (card.matched_on.length ? card.matched_on.map(spoken).join(" and ") : "number") + ". Ask which one they are, then choose."));
    } else {
      who.appendChild(h("h1", { id: "c-name", class: "name", tabindex: "-1" }, "Unknown caller"));
      who.appendChild(h("p", { class: "sub", id: "c-unknown" }, current.phone
        ? "No customer has " + current.phone + " on file. Ask their name, then find or create them."
        : current.withheld
          ? "The caller withheld their number. Ask who they are, then find or create them."
          : "No customer matches what the channel gave us. Find them or create them."));
    }

    if (c) {
      var kinds = (card.verified_on_call || []).filter(function (k) { return IDENT_KINDS[k] || k === "customer_id"; });
      who.appendChild(h("div", { id: "c-verified", class: "verified " + (card.verified ? "yes" : "no") },
        card.verified ? "✔ Identity verified on this call" + (kinds.length ? " (" + kinds.map(spoken).join(", ") + ")" : "")
          : "✖ Not verified on this call — verify before account changes"));
    }

    var flags = (card.flags || []);
    if (flags.length) {
      who.appendChild(h("ul", { id: "c-flags", class: "flags", "aria-label": "Warnings" }, flags.map(function (f) {
        return h("li", { class: "flag flag-" + f, title: FLAG_HINT[f] || "", "data-flag": f }, FLAG_TEXT[f] || human(f));
      })));
      if (card.repeat) {
        var label = reasons[card.repeat.reason] || human(card.repeat.reason);
        who.appendChild(h("p", { id: "c-repeat", class: "repeat-note" },
          "This is their " + ordinal(card.repeat.count + 1) + " contact about " + label + " in 30 days (" + card.repeat.count + " before this one). Own it — don't make them start over."));
      } else if (flags.indexOf("repeat_contact") >= 0 && (card.open_cases || []).length) {
        who.appendChild(h("p", { id: "c-repeat", class: "repeat-note" }, "Repeat contact about an open case: " + card.open_cases[0].subject + "."));
      }
    }

    who.appendChild(renderDoNotAsk());
    if (c) who.appendChild(renderIdentities(c));

    var ivr = card.ivr || {};
    var ivrKeys = Object.keys(ivr);
    if (ivrKeys.length) {
      who.appendChild(section("Told the IVR", h("dl", { id: "c-ivr", class: "kv" }, ivrKeys.map(function (k) {
        var v = typeof ivr[k] === "string" ? ivr[k] : JSON.stringify(ivr[k]);
        // An intent that is a contact reason reads better by its label.
        var shown = k === "intent" && reasons[v] ? [reasons[v], h("span", { class: "muted small code" }, " (" + v + ")")] : v;
        return [h("dt", null, human(k)), h("dd", null, shown)];
      })), "ivr"));
    }

    if (card.match === "ambiguous") who.appendChild(renderCandidates(card.candidates));
    if (card.match === "none") who.appendChild(renderLinkOrCreate());
  }

  // "Already known — don't ask again", each item in words an agent can read aloud.
  function renderDoNotAsk() {
    var card = current.card, c = card.customer, ivr = card.ivr || {};
    var items = (card.do_not_ask || []).map(function (k) {
      var text;
      if (IDENT_KINDS[k]) {
        var held = c && (c.identities || []).filter(function (i) { return i.kind === k; })[0];
        text = spoken(k) + (c ? " — on file" : " — from the call") +
          (onCallVerified(k) ? ", verified on this call" : held && held.verified ? ", verified" : "");
      } else if (k === "customer_id") {
        text = "who they are — signed in";
      } else if (Object.prototype.hasOwnProperty.call(ivr, k)) {
        var v = typeof ivr[k] === "string" ? ivr[k] : JSON.stringify(ivr[k]);
        text = human(k) + " — told the IVR: " + (k === "intent" && reasons[v] ? reasons[v] : v);
      } else {
        var fact = c && (c.facts || []).filter(function (f) { return f.key === k; })[0];
        text = human(k) + (fact ? " — on file: " + fact.value : " — on file");
      }
      return h("li", { "data-key": k }, text);
    });
    if (!c && current.phone && (card.do_not_ask || []).indexOf("phone") < 0) {
      items.unshift(h("li", { "data-key": "phone" }, "phone number — from the call (" + current.phone + ")"));
    }
    return h("section", { class: "dna", "aria-labelledby": "dna-title" },
      h("h2", { id: "dna-title" }, "Already known — do not ask for"),
      items.length ? h("ul", { id: "c-dna" }, items)
        : h("p", { class: "muted" }, current.withheld ? "Nothing yet: the number is withheld. Ask who they are." : "Nothing yet. Ask who they are."));
  }

  // Every identifier on file, verified or not (when, how), with "Verified on this call".
  function renderIdentities(c) {
    var ids = c.identities || [];
    return section("Identity on file", ids.length ? h("ul", { id: "c-ids", class: "ids" }, ids.map(function (i) {
      var now = onCallVerified(i.kind);
      var badge = now ? h("span", { class: "badge ok" }, "✔ verified on this call")
        : i.verified ? h("span", { class: "badge ok" }, "✔ verified" + (i.verified_at ? " " + when(i.verified_at) : "") + (i.verified_via ? " " + VIA_TEXT[i.verified_via] : ""))
          : h("span", { class: "badge no" }, "not verified");
      return h("li", { "data-kind": i.kind, "data-value": i.value },
        h("span", { class: "id-kind" }, KIND_TEXT[i.kind] || human(i.kind)),
        h("span", { class: "mono id-value" }, i.value),
        badge,
        now ? null : h("button", {
          type: "button", class: "verify-btn", "data-kind": i.kind,
          title: "You checked this with the caller: record it on this call (Alt+V for the first)",
          onclick: function () { verifyOnCall(i); }
        }, "Verified on this call"));
    })) : h("p", { class: "muted" }, "No identifier on file."), "identities");
  }

  function verifyOnCall(identity) {
    var ctx = current;
    return api("POST", "/api/v1/interactions/" + ctx.interactionId + "/verify", { kind: identity.kind, value: identity.value })
      .then(function (r) {
        var card = ctx.card;
        card.verified_on_call = r.verified_on_call;
        card.verified = true;
        (card.customer.identities || []).forEach(function (i) { if (i.kind === r.identity.kind && i.value === r.identity.value) Object.assign(i, r.identity); });
        if ((card.do_not_ask || []).indexOf(identity.kind) < 0) { card.do_not_ask.push(identity.kind); card.do_not_ask.sort(); }
        if (current === ctx) {
          renderWho();
          draftSave();
          var next = document.querySelector("#c-ids .verify-btn") || document.querySelector("#c-verified");
          if (next && next.focus) next.focus();
        }
      })
      .catch(function (err) { wrapMsg(errorText(err), true); });
  }

  // What tells household members apart, for the agent to ask ("the account ending 1234?").
  function candidateHints(cand) {
    var bits = [];
    if (cand.account_last4) bits.push("account ending " + cand.account_last4);
    if (cand.email_domain) bits.push("e-mail at " + cand.email_domain);
    bits.push(cand.last_contact_at ? "last contact " + when(cand.last_contact_at) : "no contact yet");
    return bits.join(" · ");
  }

  function renderCandidates(candidates) {
    return section("Choose the customer", h("ul", { id: "c-candidates", class: "candidates" }, candidates.map(function (cand) {
      return h("li", null, h("button", {
        type: "button", class: "candidate", "data-id": cand.id,
        onclick: function () { linkCustomer(cand.id); }
      }, h("strong", null, cand.display_name || "(no name)"), h("span", { class: "muted" }, " — holds this " + (cand.matched_on || []).map(spoken).join(" and ")),
        h("span", { class: "apart small" }, candidateHints(cand))));
    })), "choose");
  }

  function renderLinkOrCreate() {
    return section("Find or create", h("div", { class: "link-create" },
      h("button", { type: "button", id: "c-find", onclick: function () { var q = $("search-q"); q.value = ""; q.focus(); } }, "Find the customer ( / )"),
      h("button", { type: "button", id: "c-create", onclick: function () { openCreate(); } }, "Create a new customer")
    ), "none");
  }

  function renderMemory() {
    var card = current.card, mem = clear($("memory"));
    var c = card.customer;
    if (c) {
      var prefs = c.preferences || {}, pk = Object.keys(prefs);
      mem.appendChild(section("Preferences", pk.length
        ? h("dl", { id: "c-prefs", class: "kv" }, pk.map(function (k) { return [h("dt", null, human(k)), h("dd", null, prefs[k])]; }))
        : h("p", { class: "muted" }, "None recorded."), "prefs"));
      var facts = c.facts || [];
      mem.appendChild(section("What they told us", facts.length
        ? h("dl", { id: "c-facts", class: "kv" }, facts.map(function (f) {
            return [h("dt", null, human(f.key)), h("dd", null, f.value, h("span", { class: "muted small", title: f.source && f.source.imported_from ? "imported from " + f.source.imported_from : null }, " · " + factSource(f.source) + when(f.recorded_at)))];
          }))
        : h("p", { class: "muted" }, "Nothing yet."), "facts"));
    }
    var cases = card.open_cases || [];
    if (c || cases.length) {
      mem.appendChild(section("Open cases", cases.length
        ? h("ul", { id: "c-cases", class: "cases" }, cases.map(function (k) {
            return h("li", null, h("strong", null, k.subject), h("span", { class: "chip" }, human(k.status)), h("span", { class: "muted small" }, " opened " + when(k.opened_at)));
          }))
        : h("p", { class: "muted" }, "None."), "cases"));
    }
    var recent = card.recent_interactions || [];
    if (c) {
      mem.appendChild(section("Recent contacts", recent.length
        ? h("ol", { id: "c-recent", class: "recent" }, recent.map(function (i) {
            return h("li", { "data-id": i.id },
              h("div", { class: "recent-head" },
                h("span", { class: "chip chan" }, human(i.channel)),
                h("strong", null, i.reason ? (reasons[i.reason] || human(i.reason)) : "No reason"),
                i.outcome ? h("span", { class: "chip outcome-" + i.outcome }, human(i.outcome)) : null,
                h("span", { class: "muted small" }, when(i.started_at) + (i.agent ? " · " + i.agent : ""))),
              i.summary ? h("p", { class: "summary" }, i.summary) : null);
          }))
        : h("p", { class: "muted" }, "First contact."), "recent"));
    }
    if (!c) {
      mem.appendChild(h("p", { class: "empty-note" }, card.match === "ambiguous"
        ? "Choose the customer on the left to see their preferences, facts, cases and recent contacts."
        : "Nothing on file for this caller. Once you find or create the customer, their history shows here."));
    }
    if (card.last_feedback) {
      var fb = card.last_feedback;
      var words = fb.text || "", LIMIT = 160;
      var quote = words ? h("blockquote", { id: "c-feedback-text", class: "quote" }, words.length > LIMIT ? words.slice(0, LIMIT).replace(/\s+\S*$/, "") + "…" : words) : null;
      var more = words.length > LIMIT ? h("button", { type: "button", class: "link", id: "c-feedback-more", "aria-expanded": "false", onclick: function () {
        var open = more.getAttribute("aria-expanded") === "true";
        quote.textContent = open ? words.slice(0, LIMIT).replace(/\s+\S*$/, "") + "…" : words;
        more.setAttribute("aria-expanded", open ? "false" : "true");
        more.textContent = open ? "Show all" : "Show less";
      } }, "Show all") : null;
      mem.appendChild(section("Last feedback", [h("p", null,
        fb.rating ? "Rated " + fb.rating + "/5 " : "", fb.sentiment ? h("span", { class: "chip sent-" + fb.sentiment }, fb.sentiment) : null,
        h("span", { class: "muted small" }, " " + when(fb.received_at))), quote || h("p", { class: "muted small" }, "No words, only a rating."), more], "feedback"));
    }
  }

  // ---- linking and creating -------------------------------------------------
  function linkCustomer(customerId) {
    var ctx = current;
    return api("PATCH", "/api/v1/interactions/" + ctx.interactionId, { customer_id: customerId })
      .then(function () { return reloadCard(ctx, customerId); })
      .catch(function (err) { wrapMsg(errorText(err), true); });
  }

  function reloadCard(ctx, customerId) {
    // The same contact again, now with the customer: what the IVR collected still counts.
    var body = { channel: ctx.channel || "phone", customer_id: customerId };
    if (ctx.callId) body.call_id = ctx.callId;
    ["phone", "email", "account"].forEach(function (k) { if (ctx[k]) body[k] = ctx[k]; });
    if (ctx.verified && ctx.verified.length) body.verified = ctx.verified;
    if (ctx.card && ctx.card.ivr && Object.keys(ctx.card.ivr).length) body.ivr = ctx.card.ivr;
    return api("POST", "/api/v1/context/lookup", body).then(function (card) {
      var next = Object.assign({}, ctx, { card: card, interactionId: card.interaction_id });
      var keepForm = current && current.interactionId === next.interactionId;
      var saved = keepForm ? snapshotWrapUp() : null;
      if (keepForm) draftDrop(ctx.interactionId);
      showContact(next, saved);
    });
  }

  function openCreate() {
    $("results").hidden = false;
    clear($("results-list"));
    $("results-title").textContent = "New customer";
    var form = $("create-form");
    form.reset();
    if (current && current.phone) form.elements.phone.value = current.phone;
    if (current && current.email) form.elements.email.value = current.email;
    $("create").open = true;
    form.elements.display_name.focus();
  }

  $("create-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = ev.target, msg = f.querySelector(".form-msg");
    var identities = ["phone", "email", "account"].filter(function (k) { return f.elements[k].value.trim(); })
      .map(function (k) { return { kind: k, value: f.elements[k].value.trim() }; });
    var body = { display_name: f.elements.display_name.value.trim(), preferred_name: f.elements.preferred_name.value.trim(), identities: identities };
    msg.textContent = "";
    api("POST", "/api/v1/customers", body).then(function (customer) {
      $("create").open = false;
      $("results").hidden = true;
      if (current && !current.card.customer) return linkCustomer(customer.id);
      return openManual(customer.id);
    }).catch(function (err) { msg.textContent = errorText(err); });
  });

  // ---- manual search (chats, e-mails, walk-ins) -------------------------------
  function openManual(customerId) {
    if (busy()) {
      wrapMsg("Save or discard this wrap-up (Next contact) before opening another customer.", true);
      return Promise.resolve();
    }
    var channel = $("search-channel").value;
    return api("POST", "/api/v1/context/lookup", { channel: channel, customer_id: customerId }).then(function (card) {
      showContact({ interactionId: card.interaction_id, callId: null, channel: channel, card: card, ended: false, manual: true });
    });
  }

  $("search-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = $("search-q").value.trim();
    if (!q) return;
    api("GET", "/api/v1/customers?search=" + encodeURIComponent(q)).then(function (data) {
      var linking = current && !current.card.customer && !current.ended;
      $("results-title").textContent = (linking ? "Link this contact to…" : "Customers") + " (" + data.results.length + ")";
      var list = clear($("results-list"));
      data.results.forEach(function (cust) {
        list.appendChild(h("li", null, h("button", {
          type: "button", class: "result", "data-id": cust.id,
          onclick: function () {
            (linking ? linkCustomer(cust.id) : openManual(cust.id)).then(function () {
              $("results").hidden = true;
              $("search-q").value = "";
            });
          }
        }, h("strong", null, cust.display_name), cust.preferred_name && cust.preferred_name !== cust.display_name ? h("span", null, " (" + cust.preferred_name + ")") : null,
          cust.tier === "vip" ? h("span", { class: "flag flag-vip small" }, "VIP") : null,
          h("span", { class: "muted small" }, linking ? "  link" : "  open card"))));
      });
      if (!data.results.length) list.appendChild(h("li", { class: "muted" }, "No customer found for “" + q + "”."));
      $("create").open = !data.results.length;
      if (!data.results.length) {
        var f = $("create-form");
        f.reset();
        if (/@/.test(q)) f.elements.email.value = q;
        else if (/^[+\d][\d\s().-]{5,}$/.test(q)) f.elements.phone.value = q;
        else f.elements.display_name.value = q;
      }
      $("results").hidden = false;
      var first = list.querySelector("button");
      if (first) first.focus();
    }).catch(function (err) { setStatus(errorText(err), "error"); });
  });
  $("results-close").addEventListener("click", function () { $("results").hidden = true; });

  // ---- wrap-up ------------------------------------------------------------------
  function pairRow(kind, key, value) {
    var row = h("div", { class: "pair" },
      h("input", { name: kind + "-key", placeholder: kind === "facts" ? "e.g. router_model" : "e.g. preferred_channel", "aria-label": (kind === "facts" ? "Fact" : "Preference") + " name", value: key || "" }),
      h("input", { name: kind + "-value", placeholder: "value", "aria-label": "Value", value: value || "" }),
      h("button", { type: "button", class: "link", "aria-label": "Remove", onclick: function () { row.remove(); } }, "×"));
    return row;
  }
  function addPair(kind) {
    var box = $(kind === "facts" ? "wrap-facts" : "wrap-prefs");
    var row = pairRow(kind);
    box.appendChild(row);
    row.querySelector("input").focus();
  }
  document.querySelectorAll("[data-add]").forEach(function (b) {
    b.addEventListener("click", function () { addPair(b.getAttribute("data-add")); });
  });
  function pairs(kind) {
    var out = [];
    $(kind === "facts" ? "wrap-facts" : "wrap-prefs").querySelectorAll(".pair").forEach(function (row) {
      var k = row.children[0].value.trim(), v = row.children[1].value.trim();
      if (k) out.push([k, v]);
    });
    return out;
  }
  function wrapMsg(text, isError) {
    var el = $("wrap-msg");
    el.textContent = text;
    el.className = "form-msg " + (isError ? "error" : "ok");
  }
  function resetWrapUp() {
    $("wrap-form").reset();
    clear($("wrap-facts")); clear($("wrap-prefs"));
    wrapMsg("", false);
    var ivr = (current && current.card.ivr) || {};
    if (ivr.intent && reasons[ivr.intent]) $("wrap-reason").value = ivr.intent;
  }
  function snapshotWrapUp() {
    return { reason: $("wrap-reason").value, outcome: $("wrap-outcome").value, summary: $("wrap-summary").value, facts: pairs("facts"), prefs: pairs("prefs") };
  }
  function restoreWrapUp(s) {
    $("wrap-reason").value = s.reason; $("wrap-outcome").value = s.outcome; $("wrap-summary").value = s.summary;
    s.facts.forEach(function (p) { $("wrap-facts").appendChild(pairRow("facts", p[0], p[1])); });
    s.prefs.forEach(function (p) { $("wrap-prefs").appendChild(pairRow("prefs", p[0], p[1])); });
  }

  function markDirty() {
    if (!current) return;
    current.dirty = true;
    current.saved = false;
    $("draft-note").hidden = false;
    draftSave();
  }
  $("wrap-form").addEventListener("input", markDirty);
  $("wrap-form").addEventListener("change", markDirty);
  $("wrap-form").addEventListener("click", function (ev) {
    // Removing a fact/preference row changes the wrap-up too.
    if (ev.target && ev.target.getAttribute("aria-label") === "Remove") setTimeout(markDirty, 0);
  });

  $("wrap-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!current) return;
    // Reason and outcome are what reports count contacts by: a wrap-up without them is not saved.
    var missing = [["wrap-reason", "a reason"], ["wrap-outcome", "an outcome"]].filter(function (m) { return !$(m[0]).value; });
    ["wrap-reason", "wrap-outcome"].forEach(function (id) { $(id).removeAttribute("aria-invalid"); });
    if (missing.length) {
      missing.forEach(function (m) { $(m[0]).setAttribute("aria-invalid", "true"); });
      wrapMsg("Choose " + missing.map(function (m) { return m[1]; }).join(" and ") + " to save: reports count every contact by them.", true);
      $(missing[0][0]).focus();
      return;
    }
    var body = {};
    if ($("wrap-reason").value) body.reason = $("wrap-reason").value;
    if ($("wrap-outcome").value) body.outcome = $("wrap-outcome").value;
    var summary = $("wrap-summary").value.trim();
    if (summary) body.summary = summary;
    var facts = pairs("facts"), prefs = pairs("prefs");
    // Fact keys are slugs: "Router model" is stored as "router_model".
    if (facts.length) body.facts = facts.map(function (p) { return { key: p[0].toLowerCase().replace(/[^a-z0-9_-]+/g, "_"), value: p[1] }; });
    if (prefs.length) { body.preferences = {}; prefs.forEach(function (p) { body.preferences[p[0]] = p[1]; }); }
    // Calls are closed by the telephony's "ended"; other contacts end when wrapped up.
    if (!current.callId) body.ended_at = new Date().toISOString();
    var ctx = current;
    $("wrap-save").disabled = true;
    api("PATCH", "/api/v1/interactions/" + ctx.interactionId, body).then(function () {
      ctx.saved = true;
      ctx.dirty = false;
      draftDrop(ctx.interactionId);
      if (current !== ctx) return;
      $("draft-note").hidden = true;
      wrapMsg(waiting.length ? "Saved. A call is waiting: Next contact (Alt+N) takes it." : "Saved. The next contact will see it.", false);
      $("done").focus();
    }).catch(function (err) {
      wrapMsg(errorText(err), true);
    }).then(function () { $("wrap-save").disabled = false; });
  });
  $("wrap-summary").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); $("wrap-form").requestSubmit(); }
  });
  $("done").addEventListener("click", nextContact);

  // ---- events from the telephony -------------------------------------------------
  function onCall(p) {
    var queued = waiting.filter(function (w) { return w.interactionId === p.interaction_id; })[0];
    if (queued) {
      if (p.event) queued.event = p.event;
      if (p.ended_at) queued.ended = true;
      renderQueued();
      return;
    }
    if (current && current.interactionId === p.interaction_id) {
      // The same call again (connected after ringing, or a replay on reconnect): keep the screen.
      if (p.event) current.event = p.event;
      if (p.ended_at) current.ended = true;
      updateStatus();
      renderWhoKeepingFocus();
      return;
    }
    var dismissed = null;
    try { dismissed = sessionStorage.getItem("goldfish-dismissed"); } catch (e) { /* private mode */ }
    if (p.replay && dismissed === p.interaction_id) return;
    var call = p.call || {};
    var ctx = {
      interactionId: p.interaction_id, callId: call.call_id, channel: call.channel || "phone",
      phone: call.phone, email: call.email, account: call.account, verified: call.verified || [],
      withheld: !!call.withheld, event: p.event, card: p.card, ended: !!p.ended_at
    };
    offer(ctx);
    if (p.card.match !== "unique") {
      // After a reconnect the stored card may predate the agent linking the caller.
      api("GET", "/api/v1/interactions/" + p.interaction_id).then(function (i) {
        if (i.customer_id && current && current.interactionId === p.interaction_id) reloadCard(current, i.customer_id);
      }).catch(function () { /* the card as pushed still stands */ });
    }
  }
  function renderWhoKeepingFocus() {
    var active = document.activeElement;
    var inWho = active && $("who").contains(active);
    renderWho();
    if (inWho) { var hd = document.querySelector("#who h1"); if (hd) hd.focus(); }
  }
  function onEnded(p) {
    waiting.forEach(function (w) { if (w.interactionId === p.interaction_id) { w.ended = true; renderQueued(); } });
    if (!current || current.interactionId !== p.interaction_id) return;
    current.ended = true;
    updateStatus();
    renderWhoKeepingFocus();
  }

  function connect() {
    var es = new EventSource("/agent/events");
    var link = $("link");
    es.onopen = function () { link.textContent = "live"; link.className = "link-state up"; setOnline(true); };
    es.onerror = function () {
      link.textContent = "reconnecting…"; link.className = "link-state down";
      setOnline(false);
      // EventSource retries by itself unless the server refused the stream:
      // back to the login page if the session ended, else try again shortly.
      if (es.readyState !== EventSource.CLOSED) return;
      api("GET", "/api/v1/reasons").then(function () { setTimeout(connect, 3000); }).catch(function (err) {
        if (err.status === 401 || err.status === 403) window.location.href = "/agent/login/?next=/agent/";
        else setTimeout(connect, 3000);
      });
    };
    es.addEventListener("call", function (e) { onCall(JSON.parse(e.data)); });
    es.addEventListener("ended", function (e) { onEnded(JSON.parse(e.data)); });
    es.addEventListener("recognition", function (e) { addKudos(JSON.parse(e.data), true); });
  }

  // ---- my recognitions -----------------------------------------------------------
  function addKudos(r, fresh) {
    var list = $("kudos-list");
    if (list.querySelector('[data-id="' + r.id + '"]')) return;
    var li = h("li", { "data-id": r.id, class: fresh ? "new" : null },
      r.quote ? h("q", null, r.quote) : h("span", null, "Praised you" + (r.rating ? " with " + r.rating + "/5" : "")),
      h("span", { class: "muted small" }, " — a customer, " + when(r.created_at)));
    if (fresh) list.insertBefore(li, list.firstChild); else list.appendChild(li);
    while (list.children.length > 10) list.removeChild(list.lastChild);
    $("kudos-empty").hidden = true;
  }

  // ---- keyboard ----------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    var typing = /INPUT|TEXTAREA|SELECT/.test((document.activeElement || {}).tagName || "");
    if (ev.key === "/" && !typing) { ev.preventDefault(); $("search-q").focus(); $("search-q").select(); }
    else if (ev.key === "Escape" && !$("results").hidden) { $("results").hidden = true; $("search-q").blur(); }
    else if (ev.altKey && !ev.ctrlKey && !ev.metaKey && current) {
      var act = { KeyN: function () { nextContact(); }, KeyS: function () { $("wrap-form").requestSubmit(); },
        KeyR: function () { $("wrap-reason").focus(); },
        KeyV: function () { var b = document.querySelector("#c-ids .verify-btn"); if (b) b.click(); } }[ev.code];
      if (act) { ev.preventDefault(); act(); }
    }
  });

  // ---- start -----------------------------------------------------------------------
  api("GET", "/api/v1/reasons").then(function (list) {
    var sel = $("wrap-reason");
    list.forEach(function (r) { reasons[r.code] = r.label; sel.appendChild(h("option", { value: r.code }, r.label)); });
    if (current) { renderWho(); renderMemory(); var ivr = current.card.ivr || {}; if (ivr.intent && reasons[ivr.intent] && !sel.value) sel.value = ivr.intent; }
  }).catch(function () { /* the form still works with codes missing */ });
  $("logout-form").addEventListener("submit", draftsClear);  // drafts hold notes about customers: not left behind
  goReady();
  // Contacts left in wrap-up (and calls waiting) before a reload come back first, oldest first.
  draftsAll().forEach(function (d) {
    if (!current) showContact(d.ctx, d.form);
    else { waiting.push(d.ctx); }
  });
  renderQueued();
  api("GET", "/agent/recognitions").then(function (data) {
    (data.results || []).forEach(function (r) { addKudos(r, false); });
  }).catch(function () { /* the panel stays empty */ });
  connect();
})();
