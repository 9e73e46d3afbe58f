/*! Throughline tracker. Install: <script async src="https://HOST/t.js" data-counter="ID"></script> */
(function (w, d) {
  'use strict';
  if (w.throughline && w.throughline.version) return; // loaded twice
  var script = d.currentScript || d.querySelector('script[data-counter]');
  var counter = script && parseInt(script.getAttribute('data-counter'), 10);
  if (!counter) {
    if (w.console) console.warn('throughline: the script tag needs data-counter="<counter id>"');
    return;
  }
  var base = script.src.replace(/\/t\.js([?#].*)?$/, ''), endpoint = base + '/collect';
  var ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  var UUID = '_tl_uuid', SID = '_tl_sid', YEAR = 31536000;

  function getCookie(name) {
    var m = d.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
    return m ? m[1] : '';
  }

  // Cookies go on the widest domain the browser accepts (shop.ru when on
  // www.shop.ru), so the site's subdomains share one visitor; the browser
  // refuses public suffixes such as co.uk by itself.
  var cookieDomain;
  function setCookie(name, value, maxAge) {
    var tail = (maxAge ? '; max-age=' + maxAge : '') + '; path=/; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
    if (cookieDomain === undefined) {
      cookieDomain = '';
      var parts = location.hostname.split('.');
      for (var i = parts.length - 2; i >= 0 && !/^\d+$/.test(parts[parts.length - 1]); i--) {
        var domain = parts.slice(i).join('.');
        d.cookie = name + '=' + value + '; domain=' + domain + tail;
        if (getCookie(name) === value) {
          cookieDomain = domain;
          return;
        }
      }
    }
    d.cookie = name + '=' + value + (cookieDomain ? '; domain=' + cookieDomain : '') + tail;
  }

  function load(storage, key) {
    try { return w[storage].getItem(key) || ''; } catch (e) { return ''; }
  }
  function save(storage, key, value) {
    try { w[storage].setItem(key, value); } catch (e) { /* storage disabled */ }
  }

  function newID() {
    var c = w.crypto || w.msCrypto, b = new Uint8Array(16), h = '', i;
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = b[6] & 15 | 64;
    b[8] = b[8] & 63 | 128;
    for (i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1);
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // The visitor id lives a year in a first-party cookie, renewed on every
  // visit, with localStorage as the fallback where cookies are blocked.
  var uuid = getCookie(UUID);
  if (!ID.test(uuid)) uuid = load('localStorage', UUID);
  if (!ID.test(uuid)) uuid = newID();
  setCookie(UUID, uuid, YEAR);
  save('localStorage', UUID, uuid);

  // The session id is the server's: this is the last one it gave us.
  var sid = getCookie(SID);
  if (!ID.test(sid)) sid = load('sessionStorage', SID);
  if (!ID.test(sid)) sid = '';

  function setSID(s) {
    if (!s || !ID.test(s)) return;
    var first = !sid || s !== sid;
    if (s !== sid) {
      sid = s;
      setCookie(SID, sid, 0);
      save('sessionStorage', SID, sid);
    }
    fillForms();
    if (first) lease();
  }

  // post sends JSON (as text/plain: no CORS preflight) to one of the
  // server's endpoints and calls back with (status, parsed body or null).
  function post(path, data, cb) {
    if (!w.fetch) return;
    data.counter = counter;
    data.sid = sid;
    data.uuid = uuid;
    w.fetch(base + path, {
      method: 'POST', body: JSON.stringify(data), keepalive: true, credentials: 'omit',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' }
    }).then(function (r) {
      if (!cb) return;
      if (r.status !== 200 && r.status !== 201) return cb(r.status, null);
      r.json().then(function (b) { cb(r.status, b); }, function () { cb(r.status, null); });
    }, function () { if (cb) cb(0, null); });
  }

  // Dynamic number insertion: the server lends this session a tracked
  // number, shown instead of the site's own phone — in the elements the
  // counter's selector names and wherever the site's phone is written —
  // keeping the page's own formatting. Any failure leaves the page as it is.
  var shown = null, dni = null, capture = false, beat = 0;
  function digits(s) { return s.replace(/\D/g, ''); }
  function samePhone(a, b) { return !!b && a.length >= 10 && a.slice(-10) === b.slice(-10); }
  // reformat writes number's digits into text's digit positions, from the
  // right: "8 (800) 555-35-35" with 74951112233 reads "8 (495) 111-22-33".
  function reformat(text, number) {
    var n = number.length, out = '';
    for (var i = text.length - 1; i >= 0; i--) {
      var ch = text.charAt(i);
      out = (/\d/.test(ch) && n > 0 && (number.length - n) < 10 ? number.charAt(--n) : ch) + out;
    }
    return out;
  }
  var PHONE = /\+?\d[\d\s().\u00a0-]{8,}\d/g;
  // Every text and link changed is remembered with what it said, so a new
  // number (or none) is written over the page's own text, never over an
  // earlier tracked number that may now be someone else's.
  var changed = [];
  function replaceIn(node, all) {
    if (node.nodeType === 3) {
      var t = node.nodeValue, r = t.replace(PHONE, function (m) {
        var dg = digits(m);
        return dg.length >= 10 && (all || samePhone(dg, dni.phone)) ? reformat(m, shown.number) : m;
      });
      if (r !== t) {
        changed.push([node, 'nodeValue', t]);
        node.nodeValue = r;
      }
      return;
    }
    if (node.nodeType !== 1 || /^(SCRIPT|STYLE|TEXTAREA|INPUT)$/.test(node.tagName)) return;
    if (node.tagName === 'A') {
      var href = node.getAttribute('href') || '';
      if (/^tel:/i.test(href) && (all || (dni.phone && samePhone(digits(href), dni.phone)))) {
        changed.push([node, 'href', href]);
        node.setAttribute('href', 'tel:+' + shown.number);
      }
    }
    for (var c = node.firstChild; c; c = c.nextSibling) replaceIn(c, all);
  }
  function restore() {
    for (var i = changed.length - 1; i >= 0; i--) {
      var ch = changed[i];
      if (ch[1] === 'href') ch[0].setAttribute('href', ch[2]); else ch[0].nodeValue = ch[2];
    }
    changed = [];
  }
  // insertNumber writes the shown number into node (the whole page when
  // none): where the site's phone is written, and in the selector's elements.
  function insertNumber(node) {
    if (!shown || !dni || !d.body) return;
    node = node || d.body;
    if (dni.phone) replaceIn(node, false);
    if (dni.selector) {
      try {
        if (node.nodeType === 1 && node.matches && node.matches(dni.selector)) replaceIn(node, true);
        var els = node.querySelectorAll ? node.querySelectorAll(dni.selector) : [];
        for (var i = 0; i < els.length; i++) replaceIn(els[i], true);
      } catch (e) { /* a selector the browser cannot read */ }
    }
  }
  function lease() {
    post('/numbers/lease', {}, function (status, b) {
      if (!b) return;
      capture = b.capture_forms;
      var next = b.number && b.number.number ? b.number : null;
      if (!next || !shown || next.number !== shown.number) restore(); // back to the page's own, then the new number
      dni = b.dni;
      shown = next;
      insertNumber();
      clearInterval(beat);
      if (shown && shown.lease_id) beat = setInterval(heartbeat, (b.heartbeat_s || 60) * 1000);
    });
  }
  function heartbeat() {
    if (d.visibilityState === 'hidden' || !shown) return;
    post('/numbers/heartbeat', { lease_id: shown.lease_id }, function (status) {
      if (status === 410) lease(); // it ended (the tab slept): ask again, likely for the same number
    });
  }
  d.addEventListener('visibilitychange', function () { if (d.visibilityState === 'visible' && shown) heartbeat(); });
  w.addEventListener('pagehide', function () {
    if (shown && shown.lease_id && navigator.sendBeacon) {
      navigator.sendBeacon(base + '/numbers/release', JSON.stringify({ counter: counter, sid: sid, uuid: uuid, lease_id: shown.lease_id }));
    }
  });

  // Forms: counters that opt in receive the phones and e-mails typed into
  // a submitted form; the server keeps only their md5.
  function captureForm(form) {
    if (!capture) return;
    var phones = [], emails = [], els = form.elements || [];
    for (var i = 0; i < els.length; i++) {
      var el = els[i], v = (el.value || '').trim(), hint = (el.type + ' ' + el.name + ' ' + el.id).toLowerCase();
      if (!v || el.type === 'hidden' || el.type === 'password') continue;
      if (el.type === 'email' || /mail/.test(hint)) emails.push(v);
      else if (el.type === 'tel' || /phone|tel|телефон/.test(hint)) phones.push(v);
    }
    if (phones.length || emails.length) post('/forms/capture', { phones: phones.slice(0, 10), emails: emails.slice(0, 10) });
  }

  // ready(): callbacks run once the server has answered the first hit, or
  // after 3 s with what is known if it cannot be reached.
  var known = false, waiting = [];
  function markKnown() {
    if (known) return;
    known = true;
    var q = waiting;
    waiting = [];
    for (var i = 0; i < q.length; i++) run(q[i]);
  }
  function run(cb) {
    try { cb(api.getResultData()); } catch (e) { setTimeout(function () { throw e; }); }
  }
  setTimeout(markKnown, 3000);

  // A robot's hits are counted, not stored: whoever tries the site in a
  // headless browser would see nothing in the reports and not know why.
  var warned = false;
  function warnRobot(reason) {
    if (!reason || warned || !w.console) return;
    warned = true;
    console.warn('throughline: this visit is counted as a robot\'s (' + reason + ') and not stored: ' +
      'headless browsers, crawlers and HTTP libraries are not visitors. Open the site in an ordinary browser to see your visit.');
  }

  function send(hit) {
    hit.counter = counter;
    hit.uuid = uuid;
    hit.sid = sid;
    hit.url = location.href;
    hit.title = d.title;
    var body = JSON.stringify(hit);
    // text/plain keeps the request "simple": no CORS preflight round trip.
    if (w.fetch) {
      w.fetch(endpoint, {
        method: 'POST', body: body, keepalive: true, credentials: 'omit',
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' }
      }).then(function (r) {
        warnRobot(r.headers.get('Throughline-Robot'));
        setSID(r.headers.get('Throughline-Sid'));
        markKnown();
      }, markKnown);
    } else if (navigator.sendBeacon) {
      navigator.sendBeacon(endpoint, body);
      markKnown();
    } else {
      var q = [];
      for (var k in hit) {
        if (hit[k] !== undefined) q.push(k + '=' + encodeURIComponent(typeof hit[k] === 'object' ? JSON.stringify(hit[k]) : hit[k]));
      }
      new Image().src = endpoint + '.gif?' + q.join('&');
      markKnown();
    }
  }

  var lastPage = '', referrer = d.referrer;
  function page() {
    return location.href.replace(/#.*$/, '');
  }
  function pageview() {
    if (page() === lastPage) return;
    send({ type: 'pageview', referrer: referrer });
    referrer = location.href; // the next page of a single-page app was referred by this one
    lastPage = page();
  }

  // Hidden inputs throughline_sid / throughline_uuid in every form, so the
  // CRM receives the ids with each order without code on the site.
  function put(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = d.createElement('input');
      input.type = 'hidden';
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }
  function fillForm(form) {
    put(form, 'throughline_sid', sid);
    put(form, 'throughline_uuid', uuid);
  }
  function fillForms() {
    for (var i = 0; i < d.forms.length; i++) fillForm(d.forms[i]);
  }
  d.addEventListener('submit', function (e) {
    if (e.target && e.target.tagName === 'FORM') {
      fillForm(e.target);
      captureForm(e.target);
    }
  }, true);
  if (w.MutationObserver) {
    var pending = false, added = [];
    new MutationObserver(function (records) {
      for (var i = 0; i < records.length; i++) {
        for (var j = 0; j < records[i].addedNodes.length; j++) added.push(records[i].addedNodes[j]);
      }
      if (pending) return;
      pending = true;
      setTimeout(function () {
        pending = false;
        fillForms();
        var nodes = added;
        added = [];
        for (var k = 0; k < nodes.length; k++) insertNumber(nodes[k]); // only what was added
      }, 0);
    }).observe(d.documentElement, { childList: true, subtree: true });
  }
  if (d.readyState === 'loading') d.addEventListener('DOMContentLoaded', fillForms);
  else fillForms();

  // Single-page apps: a history change to a new URL is a pageview.
  function wrap(method) {
    var orig = history[method];
    if (!orig) return;
    history[method] = function () {
      var r = orig.apply(this, arguments);
      pageview();
      return r;
    };
  }
  wrap('pushState');
  wrap('replaceState');
  w.addEventListener('popstate', pageview);

  var api = {
    version: 1,
    // The ids to pass to the CRM with an order (K50's getResultData), and
    // the tracked number this session shows.
    getResultData: function () {
      return { sid: sid, uuid: uuid, phones: shown ? [{ number: shown.number, number_formatted: shown.display }] : [] };
    },
    // A lead (form, chat, email, callback) with this session: the site's
    // own fields, sent with the ids; cb(ok) when the server has it.
    sendLead: function (lead, cb) {
      lead = lead || {};
      api.ready(function () { // a lead needs the session: wait for the first hit's answer
        post('/leads/collect', {
          type: lead.type, subject: lead.subject, name: lead.name, phone: lead.phone, email: lead.email, comment: lead.comment
        }, function (status) { if (typeof cb === 'function') cb(status === 201); });
      });
    },
    // The visitor id (Metrica's getClientID).
    getClientID: function () { return uuid; },
    ready: function (cb) {
      if (typeof cb !== 'function') return;
      if (known) run(cb); else waiting.push(cb);
    },
    event: function (name, props) {
      if (!name) return;
      send({ type: 'event', name: String(name), props: props && typeof props === 'object' ? props : undefined });
    }
  };

  // Calls made before this script loaded, through the optional stub
  // window.throughline = {q: [[method, args], …]}, run now.
  var queued = w.throughline && w.throughline.q;
  w.throughline = api;
  if (queued && queued.length) {
    for (var i = 0; i < queued.length; i++) {
      if (typeof api[queued[i][0]] === 'function') api[queued[i][0]].apply(api, queued[i][1]);
    }
  }
  pageview();
})(window, document);
