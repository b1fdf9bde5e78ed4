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
    phone: "Phone number", email: "E-mail", account: "Account number", customer_id: "Identity (known)"
  };
  var EVENT_TEXT = { ringing: "Ringing", connected: "On call" };

  var reasons = {};          // code -> label
  var current = null;        // {interactionId, callId, channel, phone, email, account, card, ended}
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
    setStatus("Ready for a contact", "ready");
    document.title = "Ready · Goldfish";
  }

  // ---- the card ------------------------------------------------------------
  function showContact(ctx) {
    current = ctx;
    var card = ctx.card;
    document.body.classList.add("on-contact");
    $("results").hidden = true;
    renderWho();
    renderMemory();
    resetWrapUp();
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

  function renderWho() {
    var card = current.card, who = clear($("who"));
    var c = card.customer;
    var contactLine = h("div", { class: "contact-line" },
      h("span", { class: "chip chan" }, human(current.channel || "phone")),
      current.phone ? h("span", { class: "mono" }, current.phone) : null,
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
      who.appendChild(h("p", { class: "sub" }, card.candidates.length + " customers share this " + (card.matched_on.length ? card.matched_on.join(", ") : "number") + ". Ask which one they are, then choose."));
    } else {
      who.appendChild(h("h1", { id: "c-name", class: "name", tabindex: "-1" }, "Unknown caller"));
      who.appendChild(h("p", { class: "sub" }, "No customer has this " + (current.phone ? "number" : "identifier") + ". Find them or create them."));
    }

    who.appendChild(h("div", { id: "c-verified", class: "verified " + (card.verified ? "yes" : "no") },
      card.verified ? "✔ Identity verified" : "✖ Not verified" + (c ? " — verify before account changes" : "")));

    var flags = (card.flags || []);
    if (flags.length) {
      who.appendChild(h("ul", { id: "c-flags", class: "flags", "aria-label": "Warnings" }, flags.map(function (f) {
        return h("li", { class: "flag flag-" + f, title: FLAG_HINT[f] || "", "data-flag": f }, FLAG_TEXT[f] || human(f));
      })));
    }

    var dna = card.do_not_ask || [];
    who.appendChild(h("section", { class: "dna", "aria-labelledby": "dna-title" },
      h("h2", { id: "dna-title" }, "Do not ask for"),
      dna.length
        ? h("ul", { id: "c-dna" }, dna.map(function (k) { return h("li", { "data-key": k }, KIND_TEXT[k] || human(k)); }))
        : h("p", { class: "muted" }, "Nothing on file yet.")));

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

  function renderCandidates(candidates) {
    return section("Choose the customer", h("ul", { id: "c-candidates", class: "candidates" }, candidates.map(function (cand) {
      return h("li", null, h("button", {
        type: "button", class: "candidate", "data-id": cand.id,
        onclick: function () { linkCustomer(cand.id); }
      }, h("strong", null, cand.display_name || "(no name)"), h("span", { class: "muted" }, " matched on " + (cand.matched_on || []).join(", "))));
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
            return [h("dt", null, human(f.key)), h("dd", null, f.value, h("span", { class: "muted small" }, " · " + (f.source && f.source.channel ? f.source.channel + ", " : "") + when(f.recorded_at)))];
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
      mem.appendChild(section("Last feedback", h("p", null,
        fb.rating ? "Rated " + fb.rating + "/5 " : "", fb.sentiment ? h("span", { class: "chip sent-" + fb.sentiment }, fb.sentiment) : null,
        h("span", { class: "muted small" }, " " + when(fb.received_at)),
        fb.text ? h("q", { class: "fb-words" }, fb.text) : null), "feedback"));
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
      showContact(next);
      if (saved) restoreWrapUp(saved);
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

  $("wrap-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!current) return;
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
      wrapMsg("Saved. The next contact will see it.", false);
      $("done").focus();
    }).catch(function (err) {
      wrapMsg(errorText(err), true);
    }).then(function () { $("wrap-save").disabled = false; });
  });
  $("wrap-summary").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); $("wrap-form").requestSubmit(); }
  });
  $("done").addEventListener("click", function () {
    var id = current && current.interactionId;
    if (id) {
      try { sessionStorage.setItem("goldfish-dismissed", id); } catch (e) { /* private mode */ }
      api("POST", "/agent/dismiss", { interaction_id: id }).catch(function () { /* best effort */ });
    }
    goReady();
    $("main").focus();
  });

  // ---- events from the telephony -------------------------------------------------
  function onCall(p) {
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
      event: p.event, card: p.card, ended: !!p.ended_at
    };
    showContact(ctx);
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
    if (!current || current.interactionId !== p.interaction_id) return;
    current.ended = true;
    updateStatus();
    renderWhoKeepingFocus();
  }

  function connect() {
    var es = new EventSource("/agent/events");
    var link = $("link");
    es.onopen = function () { link.textContent = "live"; link.className = "link-state up"; };
    es.onerror = function () {
      link.textContent = "reconnecting…"; link.className = "link-state down";
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
  }

  // ---- keyboard ----------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    var typing = /INPUT|TEXTAREA|SELECT/.test((document.activeElement || {}).tagName || "");
    if (ev.key === "/" && !typing) { ev.preventDefault(); $("search-q").focus(); $("search-q").select(); }
    else if (ev.key === "Escape" && !$("results").hidden) { $("results").hidden = true; $("search-q").blur(); }
  });

  // ---- start -----------------------------------------------------------------------
  api("GET", "/api/v1/reasons").then(function (list) {
    var sel = $("wrap-reason");
    list.forEach(function (r) { reasons[r.code] = r.label; sel.appendChild(h("option", { value: r.code }, r.label)); });
    if (current) { renderWho(); renderMemory(); var ivr = current.card.ivr || {}; if (ivr.intent && reasons[ivr.intent] && !sel.value) sel.value = ivr.intent; }
  }).catch(function () { /* the form still works with codes missing */ });
  goReady();
  connect();
})();
