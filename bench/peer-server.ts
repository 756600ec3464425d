// The peer's sync server for the bench: automerge-repo 2.x in Node the way its docs set one up (a
// Repo with a WebSocket server adapter and nodefs storage), plus a small HTTP endpoint the bench
// polls to learn what the server holds.
//
//   node --unhandled-rejections=warn --import tsx bench/peer-server.ts --port 0 --data <dir>
//   -> {"event":"listening","port":41237}
// GET /stats                      {"handles": n, "ready": n, "rssMB": n}
// GET /doc?url=<automerge url>    the document as JSON (404 while the server does not have it)
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Repo, type AutomergeUrl, type PeerId } from "@automerge/automerge-repo";
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { port: { type: "string", default: "0" }, data: { type: "string" } },
});
if (!values.data) throw new Error("--data <dir> is required");

const http = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (url.pathname === "/stats") {
    let ready = 0;
    const handles = Object.values(repo.handles);
    for (const h of handles) if (h.isReady()) ready++;
    reply(200, { handles: handles.length, ready, rssMB: process.memoryUsage().rss / 2 ** 20 });
    return;
  }
  if (url.pathname === "/doc") {
    const docUrl = url.searchParams.get("url") as AutomergeUrl;
    const id = docUrl.replace(/^automerge:/, "");
    const h = repo.handles[id as keyof typeof repo.handles];
    if (!h || !h.isReady()) return reply(404, null);
    reply(200, h.doc());
    return;
  }
  reply(404, null);
});
const wss = new WebSocketServer({ server: http });
const repo = new Repo({
  // isomorphic-ws declares its own copy of ws's types; the server is the same class.
  network: [
    new WebSocketServerAdapter(wss as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0]),
  ],
  storage: new NodeFSStorageAdapter(values.data),
  peerId: `bench-sync-server-${process.pid}` as PeerId,
  // Like the public sync server: it never announces documents, clients ask for what they want.
  sharePolicy: async () => false,
});

http.listen(Number(values.port), "127.0.0.1", () => {
  const address = http.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(JSON.stringify({ event: "listening", port }) + "\n");
});

const stop = () => {
  http.close();
  void repo.shutdown().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
