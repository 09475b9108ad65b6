// A counter Durable Object for comparing workerd with torpor (see bench/peer.sh).
// POST /{id}/increment routes to the object named {id}, which adds 1 to a count in its
// SQLite storage and returns {"count": N}.

import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, count INTEGER NOT NULL)",
    );
  }

  // workerd 2025-07-18 commits and fsyncs this write before it sends the response (seen
  // with strace), so a returned count is on disk.
  async fetch() {
    const row = this.sql
      .exec(
        "INSERT INTO counter (id, count) VALUES (0, 1) " +
          "ON CONFLICT (id) DO UPDATE SET count = count + 1 RETURNING count",
      )
      .one();
    return Response.json({ count: row.count });
  }
}

export default {
  async fetch(request, env) {
    const parts = new URL(request.url).pathname.split("/");
    if (parts.length !== 3 || parts[1] === "" || parts[2] !== "increment") {
      return Response.json({ error: "not found: use POST /{id}/increment" }, { status: 404 });
    }
    if (request.method !== "POST") {
      return Response.json(
        { error: `method ${request.method} not allowed: use POST` },
        { status: 405, headers: { allow: "POST" } },
      );
    }
    const id = decodeURIComponent(parts[1]);
    const stub = env.COUNTER.get(env.COUNTER.idFromName(id));
    return stub.fetch(request);
  },
};
