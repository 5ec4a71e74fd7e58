import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateBinding, type FieldError, type ValidationResult } from "../../src/api/v1alpha1/validate.js";
import type { ServiceBinding } from "../../src/domain/types.js";

type Doc = Record<string, unknown>;

interface Editable extends Doc {
  metadata: Doc;
  spec: { service: Doc; backends: Doc; healthCheck?: Doc; loadBalancer?: Doc } & Doc;
}
type Edit = (d: Editable) => void;

/** A minimal valid document; `edit` mutates a fresh copy. */
function doc(edit: Edit = () => undefined): Doc {
  const metadata: Doc = { name: "web" };
  const service: Doc = { name: "web" };
  const backends: Doc = { selector: { matchLabels: { app: "web" } }, port: 8080 };
  const d: Editable = { apiVersion: "dockbind.io/v1alpha1", kind: "ServiceBinding", metadata, spec: { service, backends } };
  edit(d);
  return d;
}

function ok(result: ValidationResult): ServiceBinding {
  if (!result.ok) assert.fail(`expected a valid document, got ${JSON.stringify(result.errors)}`);
  return result.binding;
}

function errors(result: ValidationResult): readonly FieldError[] {
  if (result.ok) assert.fail("expected validation errors");
  return result.errors;
}

function fields(result: ValidationResult): string[] {
  return errors(result).map((e) => e.field);
}

/** Exactly one error, on `field`. */
function onlyError(result: ValidationResult, field: string, message?: RegExp): void {
  const errs = errors(result);
  assert.deepEqual(
    errs.map((e) => e.field),
    [field],
    JSON.stringify(errs),
  );
  if (message !== undefined) assert.match(errs[0]?.message ?? "", message);
}

describe("validateBinding: defaults", () => {
  it("applies every schema default to a minimal document", () => {
    const b = ok(validateBinding(doc()));
    assert.equal(b.metadata.namespace, "default");
    assert.deepEqual(b.spec.service.tags, []);
    assert.deepEqual(b.spec.service.meta, {});
    assert.equal(b.spec.backends.protocol, "tcp");
    assert.equal(b.spec.backends.addressMode, "published");
    assert.deepEqual(b.spec.healthCheck, {
      type: "tcp",
      path: "/",
      interval: "10s",
      timeout: "2s",
      ttl: "30s",
      initialStatus: "critical",
      probeBeforeRegister: false,
    });
    assert.equal(b.spec.loadBalancer, undefined, "loadBalancer is optional and has no default");
  });

  it("applies loadBalancer defaults when one is given", () => {
    const b = ok(
      validateBinding(
        doc((d) => {
          d.spec.loadBalancer = { listen: { port: 80 }, output: "web.conf" };
        }),
      ),
    );
    assert.deepEqual(b.spec.loadBalancer, {
      kind: "nginx",
      protocol: "http",
      listen: { port: 80, address: "127.0.0.1" },
      onlyPassing: true,
      method: "round_robin",
      output: "web.conf",
    });
  });

  it("keeps explicit values over defaults", () => {
    const b = ok(
      validateBinding(
        doc((d) => {
          d.metadata.namespace = "shop";
          d.spec.backends.protocol = "udp";
          d.spec.healthCheck = { type: "http", path: "/healthz", interval: "5s", initialStatus: "passing" };
        }),
      ),
    );
    assert.equal(b.metadata.namespace, "shop");
    assert.equal(b.spec.backends.protocol, "udp");
    assert.equal(b.spec.healthCheck.type, "http");
    assert.equal(b.spec.healthCheck.path, "/healthz");
    assert.equal(b.spec.healthCheck.interval, "5s");
    assert.equal(b.spec.healthCheck.timeout, "2s");
    assert.equal(b.spec.healthCheck.initialStatus, "passing");
  });

  it("does not mutate its input", () => {
    const input = doc();
    const before = JSON.stringify(input);
    const b = ok(validateBinding(input));
    assert.equal(JSON.stringify(input), before);
    assert.notEqual(b, input);
  });
});

describe("validateBinding: document shape", () => {
  for (const [label, value] of [
    ["null", null],
    ["undefined", undefined],
    ["a number", 42],
    ["a string", "text"],
    ["an array", []],
  ] as const) {
    it(`rejects ${label} as a whole`, () => {
      onlyError(validateBinding(value), "(document)");
    });
  }

  it("reports every missing top-level field", () => {
    assert.deepEqual(fields(validateBinding({})).sort(), ["apiVersion", "kind", "metadata", "spec"]);
    for (const e of errors(validateBinding({}))) assert.equal(e.message, "required field is missing");
  });

  it("rejects another apiVersion or kind, listing the allowed value", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.apiVersion = "dockbind.io/v1";
        }),
      ),
      "apiVersion",
      /must be one of "dockbind\.io\/v1alpha1"/,
    );
    onlyError(
      validateBinding(
        doc((d) => {
          d.kind = "Service";
        }),
      ),
      "kind",
    );
  });

  it("reports nested missing fields with their full path", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          delete d.spec.backends.port;
        }),
      ),
      "spec.backends.port",
      /required field is missing/,
    );
    onlyError(
      validateBinding(
        doc((d) => {
          delete d.metadata.name;
        }),
      ),
      "metadata.name",
    );
  });

  it("reports several independent problems at once", () => {
    const f = fields(
      validateBinding(
        doc((d) => {
          d.spec.service.name = "Bad_Name";
          d.spec.backends.port = 0;
        }),
      ),
    );
    assert.deepEqual(f.sort(), ["spec.backends.port", "spec.service.name"]);
  });
});

describe("validateBinding: unknown fields", () => {
  it("rejects an unknown field under spec.backends with its path", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.backends.prot = 8080;
        }),
      ),
      "spec.backends.prot",
      /^unknown field$/,
    );
  });

  it("rejects unknown fields at every strict level", () => {
    const cases: [string, Edit][] = [
      ["spec.extra", (d) => (d.spec.extra = 1)],
      ["spec.service.tag", (d) => (d.spec.service.tag = "x")],
      ["spec.backends.selector.matchLabel", (d) => (d.spec.backends.selector = { matchLabel: { app: "web" } })],
      ["spec.healthCheck.intervall", (d) => (d.spec.healthCheck = { intervall: "5s" })],
      ["spec.loadBalancer.listen.host", (d) => (d.spec.loadBalancer = { listen: { port: 80, host: "x" }, output: "a.conf" })],
      [
        "spec.backends.selector.matchExpressions[0].value",
        (d) => (d.spec.backends.selector = { matchExpressions: [{ key: "a", operator: "Exists", value: "x" }] }),
      ],
    ];
    for (const [field, edit] of cases) {
      const errs = errors(validateBinding(doc(edit)));
      assert.ok(
        errs.some((e) => e.field === field && e.message === "unknown field"),
        `${field}: ${JSON.stringify(errs)}`,
      );
    }
  });
});

describe("validateBinding: ports", () => {
  for (const port of [0, -1, 65536, 80.5, "80", null]) {
    it(`rejects backends.port ${JSON.stringify(port)}`, () => {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.backends.port = port;
          }),
        ),
        "spec.backends.port",
      );
    });
  }

  it("accepts ports 1 and 65535", () => {
    for (const port of [1, 65535]) {
      ok(
        validateBinding(
          doc((d) => {
            d.spec.backends.port = port;
          }),
        ),
      );
    }
  });

  it("rejects a bad loadBalancer.listen.port with its path", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.loadBalancer = { listen: { port: 70000 }, output: "web.conf" };
        }),
      ),
      "spec.loadBalancer.listen.port",
    );
  });

  it("rejects an unknown protocol", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.backends.protocol = "sctp";
        }),
      ),
      "spec.backends.protocol",
      /"tcp", "udp"/,
    );
  });
});

describe("validateBinding: names", () => {
  for (const name of ["Web", "-web", "web-", "web_1", "web.svc", "", "a".repeat(64), "wéb"]) {
    it(`rejects service name ${JSON.stringify(name)}`, () => {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.service.name = name;
          }),
        ),
        "spec.service.name",
        /value rejected/,
      );
    });
  }

  for (const name of ["w", "web", "web-1", "1web", "a".repeat(63)]) {
    it(`accepts service name ${JSON.stringify(name)}`, () => {
      ok(
        validateBinding(
          doc((d) => {
            d.spec.service.name = name;
          }),
        ),
      );
    });
  }

  it("rejects a bad metadata.name / namespace", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.metadata.name = "Web";
        }),
      ),
      "metadata.name",
    );
    onlyError(
      validateBinding(
        doc((d) => {
          d.metadata.namespace = "my_ns";
        }),
      ),
      "metadata.namespace",
    );
  });

  it("reports a bad tag with its index", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.service.tags = ["ok", "has space"];
        }),
      ),
      "spec.service.tags[1]",
    );
  });
});

describe("validateBinding: service meta keys", () => {
  for (const key of ["consul-version", "dockbind_node", "dockbind_hash", "a.b", "with space", "k".repeat(129)]) {
    it(`rejects meta key ${JSON.stringify(key.length > 20 ? `${key.slice(0, 10)}...` : key)}`, () => {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.service.meta = { [key]: "x" };
          }),
        ),
        `spec.service.meta.${key}`,
        /key not allowed/,
      );
    });
  }

  it("accepts ordinary meta keys, including ones that merely contain the prefixes", () => {
    const b = ok(
      validateBinding(
        doc((d) => {
          d.spec.service.meta = { version: "1", "my-consul-x": "y", x_dockbind_: "z", "Consul-Upper": "w" };
        }),
      ),
    );
    assert.equal(b.spec.service.meta.version, "1");
  });

  it("rejects a non-string or too long meta value", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.service.meta = { version: 1 };
        }),
      ),
      "spec.service.meta.version",
    );
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.service.meta = { version: "v".repeat(513) };
        }),
      ),
      "spec.service.meta.version",
    );
  });

  it("reports a reserved key once, not once per failing sub-rule", () => {
    const errs = errors(
      validateBinding(
        doc((d) => {
          d.spec.service.meta = { "consul-x": "1" };
        }),
      ),
    );
    assert.equal(errs.length, 1, JSON.stringify(errs));
  });
});

describe("validateBinding: selector", () => {
  const withExprs = (exprs: unknown[]): Doc =>
    doc((d) => {
      d.spec.backends.selector = { matchExpressions: exprs };
    });

  it("accepts well-formed expressions of every operator", () => {
    ok(
      validateBinding(
        withExprs([
          { key: "env", operator: "In", values: ["prod"] },
          { key: "env", operator: "NotIn", values: ["dev", "test"] },
          { key: "tier", operator: "Exists" },
          { key: "legacy", operator: "DoesNotExist", values: [] },
        ]),
      ),
    );
  });

  for (const op of ["In", "NotIn"]) {
    it(`${op} without values is rejected at the values path`, () => {
      onlyError(
        validateBinding(withExprs([{ key: "env", operator: op }])),
        "spec.backends.selector.matchExpressions[0].values",
        new RegExp(`${op} needs at least one value`),
      );
      onlyError(validateBinding(withExprs([{ key: "env", operator: op, values: [] }])), "spec.backends.selector.matchExpressions[0].values");
    });
  }

  for (const op of ["Exists", "DoesNotExist"]) {
    it(`${op} with values is rejected`, () => {
      onlyError(
        validateBinding(withExprs([{ key: "env", operator: op, values: ["x"] }])),
        "spec.backends.selector.matchExpressions[0].values",
        new RegExp(`${op} takes no values`),
      );
    });
  }

  it("reports the index of the bad expression", () => {
    onlyError(
      validateBinding(
        withExprs([
          { key: "a", operator: "Exists" },
          { key: "b", operator: "In" },
        ]),
      ),
      "spec.backends.selector.matchExpressions[1].values",
    );
  });

  it("rejects an unknown operator", () => {
    onlyError(validateBinding(withExprs([{ key: "a", operator: "Equals", values: ["x"] }])), "spec.backends.selector.matchExpressions[0].operator");
  });

  it("rejects an empty selector (it would select every container)", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.backends.selector = {};
        }),
      ),
      "spec.backends.selector",
    );
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.backends.selector = { matchLabels: {} };
        }),
      ),
      "spec.backends.selector.matchLabels",
    );
  });
});

describe("validateBinding: addresses", () => {
  for (const ip of ["10.0.0.1", "::1", "fd00::1"]) {
    it(`accepts hostIP ${ip}`, () => {
      const b = ok(
        validateBinding(
          doc((d) => {
            d.spec.backends.hostIP = ip;
          }),
        ),
      );
      assert.equal(b.spec.backends.hostIP, ip);
    });
  }

  for (const ip of ["localhost", "10.0.0.256", "10.0.0.1:80", "fe80::1%eth0", "", "10.0.0"]) {
    it(`rejects hostIP ${JSON.stringify(ip)}`, () => {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.backends.hostIP = ip;
          }),
        ),
        "spec.backends.hostIP",
      );
    });
  }

  it("rejects hostIP with addressMode internal", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.backends.addressMode = "internal";
          d.spec.backends.hostIP = "10.0.0.1";
        }),
      ),
      "spec.backends.hostIP",
      /addressMode: published/,
    );
  });

  it("probeBeforeRegister: default false; accepted for http and tcp checks, refused for ttl and none", () => {
    const ok = validateBinding(doc(() => undefined));
    assert.ok(ok.ok);
    assert.equal(ok.binding.spec.healthCheck.probeBeforeRegister, false);
    for (const type of ["http", "tcp"]) {
      const r = validateBinding(
        doc((d) => {
          d.spec.healthCheck = { type, probeBeforeRegister: true };
        }),
      );
      assert.ok(r.ok, type);
      assert.equal(r.binding.spec.healthCheck.probeBeforeRegister, true);
    }
    for (const type of ["ttl", "none"]) {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.healthCheck = { type, probeBeforeRegister: true };
          }),
        ),
        "spec.healthCheck.probeBeforeRegister",
        new RegExp(`only meaningful with type http or tcp \\(got ${type}\\)`),
      );
    }
  });

  it("rejects network with addressMode published, accepts it with internal", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.backends.network = "backend";
        }),
      ),
      "spec.backends.network",
      /addressMode: internal/,
    );
    const b = ok(
      validateBinding(
        doc((d) => {
          d.spec.backends.addressMode = "internal";
          d.spec.backends.network = "backend";
        }),
      ),
    );
    assert.equal(b.spec.backends.network, "backend");
  });

  it("rejects a listen address that is not an IP", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.loadBalancer = { listen: { port: 80, address: "localhost" }, output: "web.conf" };
        }),
      ),
      "spec.loadBalancer.listen.address",
    );
  });
});

describe("validateBinding: health check and load balancer values", () => {
  for (const interval of ["10", "0s", "1d", "10 s", "1m30s"]) {
    it(`rejects interval ${JSON.stringify(interval)}`, () => {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.healthCheck = { interval };
          }),
        ),
        "spec.healthCheck.interval",
      );
    });
  }

  it("rejects an http path that does not start with /", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.healthCheck = { type: "http", path: "healthz" };
        }),
      ),
      "spec.healthCheck.path",
    );
  });

  for (const output of ["../etc/passwd.conf", "web", "web.txt", ".hidden.conf", "dir/web.conf"]) {
    it(`rejects loadBalancer.output ${JSON.stringify(output)}`, () => {
      onlyError(
        validateBinding(
          doc((d) => {
            d.spec.loadBalancer = { listen: { port: 80 }, output };
          }),
        ),
        "spec.loadBalancer.output",
      );
    });
  }

  it("requires loadBalancer.listen and output", () => {
    assert.deepEqual(
      fields(
        validateBinding(
          doc((d) => {
            d.spec.loadBalancer = {};
          }),
        ),
      ).sort(),
      ["spec.loadBalancer.listen", "spec.loadBalancer.output"],
    );
  });
});

describe("validateBinding: spec.service.datacenters", () => {
  it("accepts an ordered failover list", () => {
    const b = ok(
      validateBinding(
        doc((d) => {
          d.spec.service.datacenters = ["dc1", "dc2"];
        }),
      ),
    );
    assert.deepEqual(b.spec.service.datacenters, ["dc1", "dc2"]);
  });

  it("rejects datacenter and datacenters together, an empty or repeated list and a bad name, naming the field", () => {
    onlyError(
      validateBinding(
        doc((d) => {
          d.spec.service.datacenter = "dc1";
          d.spec.service.datacenters = ["dc1", "dc2"];
        }),
      ),
      "spec.service.datacenters",
      /mutually exclusive/,
    );
    for (const bad of [[], ["dc1", "dc1"]]) {
      assert.deepEqual(
        fields(
          validateBinding(
            doc((d) => {
              d.spec.service.datacenters = bad;
            }),
          ),
        ),
        ["spec.service.datacenters"],
      );
    }
    assert.match(
      fields(
        validateBinding(
          doc((d) => {
            d.spec.service.datacenters = ["dc1", "dc 2"];
          }),
        ),
      ).join(),
      /^spec\.service\.datacenters/,
    );
  });
});
