# workerd configuration for the counter in counter.js, used by bench/peer.sh.
# peer.sh sets the storage folder with --directory-path storage=DIR and reads the port that
# workerd picked for the socket from --control-fd.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "counter", worker = .counterWorker),
    # Each object's SQLite database is a file in this folder.
    (name = "storage", disk = (path = "storage", writable = true)),
  ],
  # Port 0: the kernel picks a free port on loopback only.
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "counter")],
);

const counterWorker :Workerd.Worker = (
  modules = [(name = "counter.js", esModule = embed "counter.js")],
  compatibilityDate = "2025-07-01",
  durableObjectNamespaces = [
    (className = "Counter", uniqueKey = "torpor-peer-counter", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "storage"),
  bindings = [(name = "COUNTER", durableObjectNamespace = "Counter")],
);
