/**
 * HTML escaping of the status page: the `html` tag escapes every value, and a
 * status document full of hostile strings renders as text, never markup.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { escapeHtml, html, SafeHtml } from "../../src/api/http/html.js";
import { renderStatusPage } from "../../src/api/http/statusPage.js";
import { formatStatusText } from "../../src/cli/status.js";
import type { StatusDocument } from "../../src/observability/statusModel.js";

const EVIL = `<script>alert("x")</script><img src=x onerror='alert(1)'>&amp;\``;

describe("escapeHtml and the html tag", () => {
  it("escapes the five HTML specials and the backtick", () => {
    assert.equal(escapeHtml(`<a href="x" title='y'>&</a>\``), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;&#96;");
    assert.equal(escapeHtml("plain text 123"), "plain text 123");
  });

  it("escapes interpolated values, keeps nested fragments, flattens arrays, drops null/undefined/false", () => {
    const inner = html`<b>${"<i>"}</b>`;
    const out = html`<p title="${'"quoted"'}">${inner}${["<1>", html`<br>`, 2]}${undefined}${null}${false}${true}</p>`;
    assert.ok(out instanceof SafeHtml);
    assert.equal(out.value, `<p title="&quot;quoted&quot;"><b>&lt;i&gt;</b>&lt;1&gt;<br>2true</p>`);
    assert.equal(html`${{ a: "<x>" }}`.value, "{&quot;a&quot;:&quot;&lt;x&gt;&quot;}");
  });
});

function hostileStatus(text = EVIL): StatusDocument {
  const EVIL = text;
  const at = "2026-01-01T00:00:00.000Z";
  return {
    apiVersion: "dockbind.io/status/v1",
    generatedAt: at,
    startedAt: at,
    running: true,
    mode: EVIL,
    node: EVIL,
    sources: {
      bindings: { synced: true, count: 1 },
      docker: { synced: false, containers: 1, endpoints: [{ node: EVIL, synced: false, containers: 1, engine: EVIL, conflicts: 1 }] },
    },
    instance: EVIL,
    nodeIdentityConflicts: [{ node: EVIL, engine: EVIL, instance: EVIL, registrations: 1, adoptWith: EVIL, message: EVIL }],
    loadBalancer: { lastReload: { at, ok: false, message: EVIL } },
    bindings: [
      {
        key: `default/${EVIL}`,
        service: EVIL,
        datacenter: EVIL,
        datacenters: { serving: EVIL, failover: true, candidates: [{ dc: EVIL, state: "stale", passing: 1 }] },
        loadBalancer: { output: EVIL, listen: EVIL, protocol: "http" },
        ready: { status: "False", reason: EVIL, message: EVIL },
        conditions: [{ type: "Ready", status: "False", reason: EVIL, message: EVIL, lastTransitionTime: at }],
        counts: { desired: 1, registered: 1, passing: 0 },
        lastRender: { at, result: EVIL, servers: 0 },
        backends: [
          { serviceId: EVIL, container: EVIL, containerName: EVIL, address: EVIL, port: 80, health: "critical", local: true },
          { serviceId: "", container: "abc", containerName: EVIL, address: "", port: 0, health: "skipped", local: true, reason: EVIL },
        ],
      },
    ],
    problems: [{ source: EVIL, document: 1, field: EVIL, message: EVIL }],
    recentErrors: [{ at, level: "error", message: EVIL, fields: { [EVIL]: EVIL } }],
  };
}

describe("renderStatusPage", () => {
  it("renders hostile values as text: no injected element or attribute survives", () => {
    const page = renderStatusPage({ status: hostileStatus(), ready: { ok: false, checks: [{ name: "consul", ok: false, message: EVIL }] } });
    assert.doesNotMatch(page, /<script/i);
    assert.doesNotMatch(page, /<img/i);
    assert.doesNotMatch(page, /onerror='/);
    assert.match(page, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&lt;img src=x onerror=&#39;alert\(1\)&#39;&gt;&amp;amp;&#96;/);
    // Attribute values are escaped too (data-binding carries the key).
    assert.match(page, /data-binding="default\/&lt;script&gt;/);
  });

  it("shows the datacenter a datacenters binding serves and every listed one", () => {
    const page = renderStatusPage({ status: hostileStatus("dc2") });
    assert.match(page, /serving datacenter <b data-serving-dc="dc2">dc2<\/b> <span class="badge warning">failover<\/span>/);
    assert.match(page, /\(dc2 1 passing \(unreachable, last known\)\)/);
  });

  it("is self-contained, refreshes itself and has no script, form or external reference", () => {
    const page = renderStatusPage({ status: hostileStatus("plain"), refreshSeconds: 7 });
    assert.match(page, /<meta http-equiv="refresh" content="7">/);
    assert.doesNotMatch(page, /<form|<link|<iframe|src=|https?:\/\//i);
    assert.match(page, /<style>/);
  });

  it("formats the same document as a table for `controller status`", () => {
    const text = formatStatusText(hostileStatus());
    assert.match(text, /BINDING\s+SERVICE\s+READY/);
    assert.match(text, /critical/);
    assert.match(text, /skipped/);
  });
});

describe("a binding held by the delete delay", () => {
  const deleting = (): StatusDocument => {
    const doc = hostileStatus("plain");
    const [b] = doc.bindings;
    assert.ok(b !== undefined);
    return {
      ...doc,
      bindings: [{ ...b, deleting: { since: "2026-01-01T00:00:00.000Z", deleteAt: "2026-01-01T00:00:10.000Z", remainingSeconds: 7, mass: true } }],
    };
  };

  it("the status page shows Deleting with the time left", () => {
    const page = renderStatusPage({ status: deleting() });
    assert.match(page, /Deleting in 7s/);
    assert.match(page, /deleted at 2026-01-01T00:00:10.000Z unless it comes back \(most bindings vanished at once\)/);
    assert.doesNotMatch(renderStatusPage({ status: hostileStatus("plain") }), /Deleting/);
  });

  it("`controller status` shows Deleting with the time left", () => {
    const text = formatStatusText(deleting());
    assert.match(text, /Deleting \(in 7s\)/);
    assert.match(text, /deleting: gone from the bindings directory since 2026-01-01T00:00:00.000Z; deleted in 7s unless it comes back/);
  });
});

describe("weights and split groups on the status page", () => {
  const split = (selector: string): StatusDocument => {
    const doc = hostileStatus("plain");
    const [b] = doc.bindings;
    assert.ok(b !== undefined);
    const lb = { output: "shop.conf", listen: "127.0.0.1:8081" };
    return {
      ...doc,
      bindings: [
        {
          ...b,
          loadBalancer: {
            protocol: "http",
            ...lb,
            split: [
              { group: 0, selector, percent: 10, servers: 1, share: 10 },
              { group: 1, selector: "track=stable", percent: 90, servers: 0, share: 0 },
            ],
          },
          backends: [
            {
              serviceId: "s1",
              container: "abc",
              containerName: "canary-1",
              address: "10.0.0.1",
              port: 80,
              health: "passing",
              local: true,
              weight: 5,
              group: 0,
              share: 100,
            },
          ],
        },
      ],
    };
  };

  it("shows each group's declared percent and current share, and each backend's weight, group and share", () => {
    const page = renderStatusPage({ status: split("track=canary") });
    assert.match(page, /<span data-split-group="0"><code>track=canary<\/code> 10% \(now 10% over 1 server\(s\)\)<\/span>/);
    assert.match(page, /<small data-share="100">weight 5 · group track=canary · 100% of requests<\/small>/);
  });

  it("a hostile selector value is text, not markup", () => {
    const page = renderStatusPage({ status: split(`track=${EVIL}`) });
    assert.doesNotMatch(page, /<script|<img/i);
    assert.match(page, /track=&lt;script&gt;/);
  });
});
