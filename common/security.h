// Security: a cluster's CURVE keys, the ZAP handler that admits only them,
// and what a failed handshake means in words.
//
// `fanout keygen DIR` writes one key pair per role (coordinator, ledger,
// worker, client), `authorized_keys` (the public keys the coordinator and
// the ledger admit, one per line, as in ssh) and `http.token`. With --keys
// DIR every process takes what its role needs: its own secret key, the
// public keys of the servers it connects to, and (servers) authorized_keys.
// The coordinator and the ledger are CURVE servers whose ZAP handler checks
// each connecting key against authorized_keys (re-read when it changes);
// workers and clients are CURVE clients.
//
//   auto keys = Keys::Load("keys", Role::kWorker);        // one-line errors
//   MakeCurveClient(dealer, **keys, Role::kCoordinator);   // before connect
//
//   auto zap = ZapHandler::Start(ctx, (*keys)->authorized_path(), "coordinator");
//   MakeCurveServer(router, **keys);                       // before bind
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "common/result.h"

namespace fanout {

enum class Role { kCoordinator, kLedger, kWorker, kClient };
std::string_view RoleName(Role role);

// A CURVE key pair, each key in Z85 (40 characters).
struct KeyPair {
  std::string public_key;
  std::string secret_key;
};
KeyPair NewKeyPair();

// A short, stable name for a public key in logs: 12 hex digits of it.
std::string Fingerprint(std::string_view z85_public);

// What one process holds of a cluster's keys.
class Keys {
 public:
  // Reads `<role>.key` from `dir` (and derives its public key). A missing,
  // unreadable, malformed or world-readable file is a one-line error.
  static Result<std::shared_ptr<const Keys>> Load(const std::string& dir, Role role);

  const std::string& dir() const { return dir_; }
  Role role() const { return role_; }
  const KeyPair& own() const { return own_; }
  // The public key of a server this process connects to
  // (`coordinator.pub` or `ledger.pub`).
  Result<std::string> ServerKey(Role server) const;
  // The keys a server admits.
  std::string authorized_path() const { return dir_ + "/authorized_keys"; }
  std::string token_path() const { return dir_ + "/http.token"; }

 private:
  std::string dir_;
  Role role_ = Role::kClient;
  KeyPair own_;
};

// `fanout keygen DIR`: a new cluster's keys. Refuses a directory that
// already holds any of them.
Status KeyGen(const std::string& dir);
// `fanout keygen DIR --add NAME --role worker|client`: a member's own key
// pair, in DIR/members/NAME/ with the server keys it needs (a directory to
// copy to that member's host), its public key appended to authorized_keys.
Result<std::string> AddMember(const std::string& dir, const std::string& name, Role role);

// authorized_keys: one Z85 public key per line, then an optional name;
// blank lines and lines starting with '#' are skipped. Key -> name.
Result<std::map<std::string, std::string>> ParseAuthorized(std::string_view text);

// Reads a key file: 40 Z85 characters (and a newline). Secret files must
// not be readable by others (a group may: Kubernetes mounts secrets so).
Result<std::string> ReadKeyFile(const std::string& path, bool secret);

// A socket made a CURVE server with our secret key, in the ZAP domain
// "fanout", enforced: with no ZAP handler answering, no peer gets in.
Status MakeCurveServer(zmq::socket_t& socket, const Keys& keys);
// A socket made a CURVE client of `server`, with our key pair.
Status MakeCurveClient(zmq::socket_t& socket, const Keys& keys, Role server);

// The ZAP handler (RFC 27) of a process's CURVE servers: a thread answering
// on inproc://zeromq.zap.01 in `ctx`. It must be started before any server
// socket binds; if it fails the process exits (ZeroMQ would otherwise let
// handshakes stall, or, without the enforced domain, admit everyone).
class ZapHandler {
 public:
  // Fails when authorized_keys cannot be read or holds a malformed line.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& ctx, std::string authorized,
                                                   std::string service);
  // The handler a server with `keys` needs; none (nullptr) without keys.
  static Result<std::unique_ptr<ZapHandler>> StartFor(zmq::context_t& ctx, const Keys* keys,
                                                      std::string service);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  uint64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  ZapHandler(zmq::socket_t socket, std::string authorized, std::string service);
  void Run();
  // One request's answer: the status code and, when admitted, the user id.
  std::pair<bool, std::string> Decide(std::string_view mechanism, std::string_view credentials,
                                      std::string_view address);
  // Re-reads authorized_keys when it changed. A missing or others-writable
  // file admits nobody; a malformed one keeps the keys read before.
  Status Reload();

  zmq::socket_t socket_;
  const std::string authorized_path_;
  const std::string service_;
  std::map<std::string, std::string> authorized_;             // read by the thread only
  std::array<int64_t, 3> authorized_version_ = {-1, -1, -1};  // mtime, size, inode
  std::map<std::string, TimePoint> logged_;                   // "fingerprint address" -> last line
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The handshakes of one socket, watched through its monitor, in words.
// On a client: why it cannot talk to its server. On a server: peers that
// failed the handshake (plain ZeroMQ, garbage, a wrong server key), counted
// and logged (a line every 10 s at most).
class HandshakeWatch {
 public:
  // `server` names the other end ("the coordinator at tcp://..."), `self`
  // this one ("client", "worker"); `keyed`: this socket uses CURVE.
  static HandshakeWatch Client(zmq::context_t& ctx, zmq::socket_t& socket, std::string server,
                               std::string self, bool keyed);
  // `name` says which socket in logs ("coordinator, workers' tcp://...").
  static HandshakeWatch Server(zmq::context_t& ctx, zmq::socket_t& socket, std::string name);

  // Reads what happened since the last call (never blocks).
  void Poll();
  // A handshake has succeeded since the last failure.
  bool ok() const { return ok_; }
  // Why a client cannot talk, when retrying will not fix it (refused, or
  // one side keyed and the other not); empty otherwise.
  const std::string& refused() const { return refused_; }
  // Why a client had no answer after waiting `waited`: the refusal, or no
  // secure handshake (wrong keys?); "" when the handshake succeeded (the
  // server is just silent) or no connection was made (it is not there).
  // Without keys, connections cut in every handshake: the server wants keys.
  std::string Explain(Duration waited) const;
  // For poll(): the monitor socket.
  zmq::socket_t& monitor() { return monitor_; }
  // Failed handshakes so far.
  uint64_t failed() const { return failed_; }

 private:
  HandshakeWatch(zmq::context_t& ctx, zmq::socket_t& socket, bool server, std::string name,
                 std::string self, bool keyed);
  void Failed(std::string why);

  bool server_side_;
  std::string name_;  // the server (client side) or this socket (server side)
  std::string self_;
  bool keyed_;
  zmq::socket_t monitor_;
  bool ok_ = false;
  bool tried_ = false;  // a connection was made, so a handshake was tried
  std::string refused_;
  uint64_t failed_ = 0;
  LogLimiter logged_{1, std::chrono::seconds(10)};
};

// A server socket ready to bind on `endpoint`: CheckListen, then CURVE when
// there are keys (whose ZapHandler must be running).
Status PrepareServer(zmq::socket_t& socket, std::string_view endpoint, const Keys* keys,
                     bool insecure);
// A client socket ready to connect to `server`: CURVE when there are keys.
Status PrepareClient(zmq::socket_t& socket, const Keys* keys, Role server);

// Whether an endpoint is reachable (127.0.0.0/8, ::1,
// localhost, ipc://, inproc://).
bool IsLoopback(std::string_view endpoint);

// A server may listen on `endpoint`: with keys anywhere, without only on
// loopback unless `insecure`. The error says what to pass.
Status CheckListen(std::string_view endpoint, bool keyed, bool insecure);

}  // namespace fanout
