#include "common/security.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/transport.h"

namespace fanout {
namespace {

constexpr std::string_view kZ85 =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr size_t kKeyChars = 40;
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr const char* kZapDomain = "fanout";
// Not in Debian's zmq.h (a draft option there) but in its libzmq 4.3.
constexpr int kZapEnforceDomain = 93;
constexpr std::array kRoles = {Role::kCoordinator, Role::kLedger, Role::kWorker, Role::kClient};

// 40 characters of Z85's alphabet that also decode: a group of five can
// stand for more than 32 bits, which zmq_z85_decode refuses (the fuzzer
// found such a "key" admitted by authorized_keys).
bool IsZ85Key(std::string_view text) {
  if (text.size() != kKeyChars || text.find_first_not_of(kZ85) != std::string_view::npos) {
    return false;
  }
  std::array<uint8_t, 32> raw{};
  const std::string key(text);
  return zmq_z85_decode(raw.data(), key.c_str()) != nullptr;
}

std::string Trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  const size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

// Writes a new file (never over an old one) with `mode`.
Status WriteNew(const std::string& path, std::string_view text, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Unavailable("cannot write {}: {}", path, std::strerror(errno));
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int saved = errno;
  close(fd);
  if (!ok) return Unavailable("cannot write {}: {}", path, std::strerror(saved));
  if (chmod(path.c_str(), mode) != 0) {  // past the umask
    return Unavailable("cannot set the mode of {}: {}", path, std::strerror(errno));
  }
  return {};
}

Status WritePair(const std::string& dir, std::string_view name, const KeyPair& pair) {
  if (Status s = WriteNew(fmt::format("{}/{}.key", dir, name), pair.secret_key + "\n", 0600); !s) {
    return s;
  }
  return WriteNew(fmt::format("{}/{}.pub", dir, name), pair.public_key + "\n", 0644);
}

Status MakeDir(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return Unavailable("cannot make {}: {}", dir, error.message());
  // A member's directory sits in members/, owner-only too.
  const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (parent.filename() == "members") chmod(parent.c_str(), 0700);
  if (chmod(dir.c_str(), 0700) != 0) {
    return Unavailable("cannot set the mode of {}: {}", dir, std::strerror(errno));
  }
  return {};
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  for (size_t got = 0; got < bytes;) {
    const ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string hex;
  for (char c : raw) hex += fmt::format("{:02x}", static_cast<uint8_t>(c));
  return hex;
}

constexpr std::string_view kReadme = R"(fanout cluster keys (made by `fanout keygen`)

Every process takes what its role needs from the directory given to --keys
(env FANOUT_KEYS); giving every process this whole directory works. To give
each host only its part, copy:

  coordinator host  coordinator.key  authorized_keys  ledger.pub  http.token
  ledger host       ledger.key       authorized_keys
  worker hosts      worker.key       coordinator.pub  ledger.pub
  client machines   client.key       coordinator.pub  ledger.pub

*.key files are secret (mode 600: never readable by others); *.pub files and
authorized_keys are public. The coordinator and the ledger admit the public
keys listed in authorized_keys, one per line with a name after it; they
re-read it when it changes: add a line to admit a key, delete it to shut
that key out on its next connection.

`fanout keygen DIR --add NAME --role worker` gives one member a key pair of
its own, in members/NAME/ with the server keys it needs, and admits it.

http.token is the bearer token the coordinator's HTTP side asks for.
)";

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kCoordinator:
      return "coordinator";
    case Role::kLedger:
      return "ledger";
    case Role::kWorker:
      return "worker";
    case Role::kClient:
      return "client";
  }
  return "client";
}

KeyPair NewKeyPair() {
  std::array<char, kKeyChars + 1> pub{}, sec{};
  zmq_curve_keypair(pub.data(), sec.data());
  return {pub.data(), sec.data()};
}

std::string Fingerprint(std::string_view z85_public) {
  std::array<uint8_t, 32> raw{};
  const std::string key(z85_public);
  if (!IsZ85Key(key) || zmq_z85_decode(raw.data(), key.c_str()) == nullptr) return "?";
  return fmt::format("{:02x}", fmt::join(raw.begin(), raw.begin() + 6, ""));
}

Result<std::string> ReadKeyFile(const std::string& path, bool secret) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return InvalidArgument("{} does not exist (fanout keygen DIR makes it)", path);
    return InvalidArgument("cannot read {}: {}", path, std::strerror(errno));
  }
  if (secret && (st.st_mode & 0004) != 0) {  // a group may read (Kubernetes' fsGroup)
    return InvalidArgument("{} can be read by others (mode {:03o}): chmod 600 {}", path,
                           st.st_mode & 0777, path);
  }
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read {}: {}", path, std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  const std::string key = Trim(text.str());
  if (!IsZ85Key(key)) {
    return InvalidArgument("{} is not a CURVE key (40 Z85 characters; it holds {})", path,
                           key.size());
  }
  return key;
}

Result<std::shared_ptr<const Keys>> Keys::Load(const std::string& dir, Role role) {
  auto keys = std::make_shared<Keys>();
  keys->dir_ = dir;
  keys->role_ = role;
  Result<std::string> secret = ReadKeyFile(fmt::format("{}/{}.key", dir, RoleName(role)), true);
  if (!secret) return secret.error();
  std::array<char, kKeyChars + 1> pub{};
  if (zmq_curve_public(pub.data(), secret->c_str()) != 0) {
    return InvalidArgument("{}/{}.key is not a CURVE secret key", dir, RoleName(role));
  }
  keys->own_ = {pub.data(), *secret};
  return std::shared_ptr<const Keys>(std::move(keys));
}

Result<std::string> Keys::ServerKey(Role server) const {
  return ReadKeyFile(fmt::format("{}/{}.pub", dir_, RoleName(server)), false);
}

Status KeyGen(const std::string& dir) {
  std::vector<std::string> ours = {"authorized_keys", "http.token", "README"};
  for (Role role : kRoles) {
    ours.push_back(fmt::format("{}.key", RoleName(role)));
    ours.push_back(fmt::format("{}.pub", RoleName(role)));
  }
  for (const std::string& file : ours) {
    if (std::filesystem::exists(dir + "/" + file)) {
      return InvalidArgument(
          "{} already holds keys ({}): keys are never overwritten; use a new "
          "directory",
          dir, file);
    }
  }
  if (Status s = MakeDir(dir); !s) return s;
  std::string authorized =
      "# The public keys this cluster's coordinator and ledger admit: one per line,\n"
      "# then a name. Delete a line to shut that key out.\n";
  for (Role role : kRoles) {
    const KeyPair pair = NewKeyPair();
    if (Status s = WritePair(dir, RoleName(role), pair); !s) return s;
    // The coordinator connects to the ledger (a client there), and each
    // server's own host checks its health (`fanout health`) with its key.
    authorized += fmt::format("{} {}\n", pair.public_key, RoleName(role));
  }
  if (Status s = WriteNew(dir + "/authorized_keys", authorized, 0644); !s) return s;
  if (Status s = WriteNew(dir + "/http.token", RandomHex(32) + "\n", 0600); !s) return s;
  return WriteNew(dir + "/README", kReadme, 0644);
}

Result<std::string> AddMember(const std::string& dir, const std::string& name, Role role) {
  if (role != Role::kWorker && role != Role::kClient) {
    return InvalidArgument("a member is a worker or a client");
  }
  if (name.empty() ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789._-") != std::string::npos ||
      name.front() == '.') {
    return InvalidArgument("'{}' is not a member name (letters, digits, '.', '_' and '-')", name);
  }
  const std::string authorized = dir + "/authorized_keys";
  if (!std::filesystem::exists(authorized)) {
    return InvalidArgument("{} does not exist: make the cluster's keys first (fanout keygen {})",
                           authorized, dir);
  }
  const std::string member = fmt::format("{}/members/{}", dir, name);
  if (std::filesystem::exists(member)) {
    return InvalidArgument("{} already exists: keys are never overwritten", member);
  }
  if (Status s = MakeDir(member); !s) return s.error();
  const KeyPair pair = NewKeyPair();
  if (Status s = WritePair(member, RoleName(role), pair); !s) return s.error();
  for (Role server : {Role::kCoordinator, Role::kLedger}) {
    const std::string pub = fmt::format("{}/{}.pub", dir, RoleName(server));
    Result<std::string> key = ReadKeyFile(pub, false);
    if (!key) return key.error();
    const std::string copy = fmt::format("{}/{}.pub", member, RoleName(server));
    if (Status s = WriteNew(copy, *key + "\n", 0644); !s) return s.error();
  }
  std::ofstream out(authorized, std::ios::app);
  out << pair.public_key << " " << name << "\n";
  if (!out.flush()) return Unavailable("cannot append to {}", authorized);
  return member;
}

Result<std::map<std::string, std::string>> ParseAuthorized(std::string_view text) {
  std::map<std::string, std::string> keys;
  size_t number = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size());
    const std::string line = Trim(text.substr(at, end - at));
    at = end + 1;
    ++number;
    if (line.empty() || line.front() == '#') continue;
    const size_t space = line.find_first_of(" \t");
    const std::string key = line.substr(0, space);
    if (!IsZ85Key(key)) {
      return InvalidArgument("line {}: '{}' is not a CURVE public key (40 Z85 characters)", number,
                             key.size() > 50 ? key.substr(0, 50) + "..." : key);
    }
    keys[key] = space == std::string::npos ? "" : Trim(line.substr(space));
  }
  return keys;
}

Status MakeCurveServer(zmq::socket_t& socket, const Keys& keys) {
  try {
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, keys.own().secret_key);
    socket.set(zmq::sockopt::zap_domain, kZapDomain);
  } catch (const zmq::error_t& e) {
    return Internal("cannot make a CURVE server: {} (is libzmq built with CURVE?)", e.what());
  }
  const int on = 1;
  if (zmq_setsockopt(socket.handle(), kZapEnforceDomain, &on, sizeof on) != 0) {
    return Internal("this libzmq cannot enforce ZAP (ZMQ_ZAP_ENFORCE_DOMAIN): {}",
                    zmq_strerror(zmq_errno()));
  }
  return {};
}

Status MakeCurveClient(zmq::socket_t& socket, const Keys& keys, Role server) {
  Result<std::string> server_key = keys.ServerKey(server);
  if (!server_key) return server_key.error();
  try {
    socket.set(zmq::sockopt::curve_serverkey, *server_key);
    socket.set(zmq::sockopt::curve_publickey, keys.own().public_key);
    socket.set(zmq::sockopt::curve_secretkey, keys.own().secret_key);
  } catch (const zmq::error_t& e) {
    return Internal("cannot make a CURVE client: {} (is libzmq built with CURVE?)", e.what());
  }
  return {};
}

// ---- ZAP ------------------------------------------------------------------------

Result<std::unique_ptr<ZapHandler>> ZapHandler::StartFor(zmq::context_t& ctx, const Keys* keys,
                                                         std::string service) {
  if (keys == nullptr) return std::unique_ptr<ZapHandler>();
  return Start(ctx, keys->authorized_path(), std::move(service));
}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& ctx, std::string authorized,
                                                      std::string service) {
  zmq::socket_t socket(ctx, zmq::socket_type::rep);
  socket.set(zmq::sockopt::linger, 0);
  try {
    socket.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Internal("cannot start the ZAP handler: {}", e.what());
  }
  std::unique_ptr<ZapHandler> handler(
      new ZapHandler(std::move(socket), std::move(authorized), std::move(service)));
  // Read once here, so that a bad file stops the start with its reason.
  if (Status s = handler->Reload(); !s) return s.error();
  spdlog::info("{}: CURVE on; {} keys authorized (from {})", handler->service_,
               handler->authorized_.size(), handler->authorized_path_);
  handler->thread_ = std::thread([h = handler.get()] { h->Run(); });
  return handler;
}

ZapHandler::ZapHandler(zmq::socket_t socket, std::string authorized, std::string service)
    : socket_(std::move(socket)),
      authorized_path_(std::move(authorized)),
      service_(std::move(service)) {}

ZapHandler::~ZapHandler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Run() {
  try {
    Message request;
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if (!RecvMessage(socket_, request)) continue;
      // version, request id, domain, address, routing id, mechanism, credentials...
      auto frame = [&](size_t i) {
        return i < request.size() ? request.frames[i].to_string_view() : std::string_view();
      };
      const auto [ok, user] = request.size() >= 6 && frame(0) == "1.0"
                                  ? Decide(frame(5), frame(6), frame(3))
                                  : std::pair<bool, std::string>{false, ""};
      std::array<std::string, 6> reply = {
          "1.0", std::string(frame(1)), ok ? "200" : "400", ok ? "OK" : "key not authorized", user,
          ""};
      for (size_t i = 0; i < reply.size(); ++i) {
        socket_.send(zmq::buffer(reply[i]),
                     i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  } catch (const std::exception& e) {
    // Without its ZAP handler a CURVE server must not run on.
    spdlog::critical("{}: the ZAP handler failed ({}): stopping", service_, e.what());
    spdlog::default_logger()->flush();
    std::_Exit(70);
  }
}

std::pair<bool, std::string> ZapHandler::Decide(std::string_view mechanism,
                                                std::string_view credentials,
                                                std::string_view address) {
  std::string key;
  if (mechanism == "CURVE" && credentials.size() == 32) {
    std::array<char, kKeyChars + 1> z85{};
    zmq_z85_encode(z85.data(), reinterpret_cast<const uint8_t*>(credentials.data()), 32);
    key = z85.data();
  }
  if (Status s = Reload(); !s) spdlog::warn("{}: {}", service_, s.error().message);
  if (auto it = authorized_.find(key); !key.empty() && it != authorized_.end()) {
    admitted_.fetch_add(1, std::memory_order_relaxed);
    return {true, it->second.empty() ? Fingerprint(key) : it->second};
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  // One line per key and address a minute.
  const std::string who = key.empty() ? fmt::format("a {} peer", mechanism) : Fingerprint(key);
  const std::string seen = fmt::format("{} {}", who, address);
  const TimePoint now = Now();
  auto last = logged_.find(seen);
  if (last == logged_.end() || now - last->second >= std::chrono::minutes(1)) {
    spdlog::warn("{}: refused key {} from {}: not in {}", service_, who, address, authorized_path_);
    logged_[seen] = now;
    if (logged_.size() > 10'000) logged_.clear();  // a flood of keys costs no memory
  }
  return {false, ""};
}

Status ZapHandler::Reload() {
  // Changed: another time, size or file (an editor's rename).
  struct stat st {};
  const bool exists = stat(authorized_path_.c_str(), &st) == 0;
  const std::array<int64_t, 3> version =
      exists
          ? std::array<int64_t, 3>{int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
                                   st.st_size, static_cast<int64_t>(st.st_ino)}
          : std::array<int64_t, 3>{-2, -2, -2};
  if (version == authorized_version_) return {};
  const bool first = authorized_version_[0] == -1;
  authorized_version_ = version;
  if (!exists) {
    authorized_.clear();  // nobody gets in
    return InvalidArgument("{} does not exist (fanout keygen DIR makes it): no key is admitted",
                           authorized_path_);
  }
  if ((st.st_mode & 0002) != 0) {
    authorized_.clear();
    return InvalidArgument("{} can be changed by others (mode {:03o}): chmod 644 {}",
                           authorized_path_, st.st_mode & 0777, authorized_path_);
  }
  std::ifstream in(authorized_path_);
  std::stringstream text;
  text << in.rdbuf();
  Result<std::map<std::string, std::string>> keys = ParseAuthorized(text.str());
  if (!keys) {
    return InvalidArgument("{}: {}{}", authorized_path_, keys.error().message,
                           first ? "" : "; the keys read before stay");
  }
  if (!first) {
    spdlog::info("{}: {} keys authorized (re-read {})", service_, keys->size(), authorized_path_);
  }
  authorized_ = std::move(*keys);
  return {};
}

// ---- handshakes -----------------------------------------------------------------

HandshakeWatch HandshakeWatch::Client(zmq::context_t& ctx, zmq::socket_t& socket,
                                      std::string server, std::string self, bool keyed) {
  return HandshakeWatch(ctx, socket, false, std::move(server), std::move(self), keyed);
}

HandshakeWatch HandshakeWatch::Server(zmq::context_t& ctx, zmq::socket_t& socket,
                                      std::string name) {
  return HandshakeWatch(ctx, socket, true, std::move(name), "", true);
}

HandshakeWatch::HandshakeWatch(zmq::context_t& ctx, zmq::socket_t& socket, bool server,
                               std::string name, std::string self, bool keyed)
    : server_side_(server),
      name_(std::move(name)),
      self_(std::move(self)),
      keyed_(keyed),
      monitor_(ctx, zmq::socket_type::pair) {
  static std::atomic<uint64_t> next{0};
  const std::string endpoint = fmt::format("inproc://fanout-handshakes-{}", ++next);
  const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  zmq_socket_monitor(socket.handle(), endpoint.c_str(), events);
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(endpoint);
}

void HandshakeWatch::Poll() {
  Message event;
  while (RecvMessage(monitor_, event)) {
    if (event.size() < 1 || event.frames[0].size() < 6) continue;
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, event.frames[0].data(), 2);
    std::memcpy(&value, static_cast<const char*>(event.frames[0].data()) + 2, 4);
    switch (id) {
      case ZMQ_EVENT_CONNECTED:
      case ZMQ_EVENT_ACCEPTED:
        tried_ = true;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        ok_ = true;
        refused_.clear();
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        // The server's ZAP handler logs its refusals itself.
        refused_ = fmt::format("refused by {}: this {}'s key is not authorized{}", name_, self_,
                               value == 400 ? "" : fmt::format(" (status {})", value));
        Failed("");
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
          refused_ = keyed_ ? fmt::format(
                                  "{} does not use keys, but this {} does (--keys): both "
                                  "sides need them, or neither",
                                  name_, self_)
                            : fmt::format(
                                  "{} requires keys: pass --keys DIR (fanout keygen "
                                  "makes them)",
                                  name_);
          Failed("it does not use CURVE (a plain ZeroMQ peer, or one without --keys)");
        } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
          Failed("it has another server key (another cluster's keys?)");
        } else {
          Failed(fmt::format("protocol error {:#x} (garbage, or a cut handshake)", value));
        }
        break;
      default:  // ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        Failed("a wrong server key, or a cut connection");
        break;
    }
  }
}

void HandshakeWatch::Failed(std::string why) {
  ok_ = false;
  ++failed_;
  if (!server_side_ || why.empty()) return;
  if (std::optional<uint64_t> skipped = logged_.Allow(Now())) {
    spdlog::warn("{}: a peer failed the handshake: {}{}", name_, why, SkippedNote(*skipped));
  }
}

std::string HandshakeWatch::Explain(Duration waited) const {
  if (!refused_.empty()) return refused_;
  if (keyed_ && tried_ && !ok_) {
    return fmt::format("no secure handshake with {} within {:.1f} s: wrong keys?", name_,
                       ToMillis(waited) / 1000);
  }
  // A CURVE server that finds no keys here closes the connection; when it
  // does so before its greeting is read, only the cut is seen.
  if (!keyed_ && tried_ && !ok_ && failed_ > 0) {
    return fmt::format(
        "{} cut every connection during the handshake: it probably requires "
        "keys: pass --keys DIR (fanout keygen makes them)",
        name_);
  }
  return "";
}

// ---- where to listen ------------------------------------------------------------

bool IsLoopback(std::string_view endpoint) {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) return true;
  if (!endpoint.starts_with("tcp://")) return false;
  std::string_view host = endpoint.substr(6);
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') == std::string_view::npos ? 0 : host.find(']') - 1);
  } else {
    host = host.substr(0, host.rfind(':'));
  }
  return host.starts_with("127.") || host == "localhost" || host == "::1" || host == "lo";
}

Status CheckListen(std::string_view endpoint, bool keyed, bool insecure) {
  if (keyed || insecure || IsLoopback(endpoint)) return {};
  return InvalidArgument(
      "listening on {} without keys: pass --keys DIR, or --insecure to accept anyone who can "
      "reach this port",
      endpoint);
}

Status PrepareServer(zmq::socket_t& socket, std::string_view endpoint, const Keys* keys,
                     bool insecure) {
  if (Status s = CheckListen(endpoint, keys != nullptr, insecure); !s) return s;
  return keys == nullptr ? Status() : MakeCurveServer(socket, *keys);
}

Status PrepareClient(zmq::socket_t& socket, const Keys* keys, Role server) {
  return keys == nullptr ? Status() : MakeCurveClient(socket, *keys, server);
}

}  // namespace fanout
