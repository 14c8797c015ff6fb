// Small helpers over SQLite's C API, shared by the ledger's store and the
// coordinator's journal.
//
//   Statement insert(db, "INSERT INTO t VALUES (?1)");
//   Bind(insert.get(), 1, name);
//   if (sqlite3_step(insert.get()) != SQLITE_DONE) ...
#pragma once

#include <sqlite3.h>

#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace fanout {

// A prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept {
    std::swap(stmt_, other.stmt_);
    return *this;
  }
  sqlite3_stmt* get() const { return stmt_; }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Binds text (or bytes, for a blob column) to parameter `i` (1-based), copied.
inline void Bind(sqlite3_stmt* s, int i, std::string_view text) {
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}
inline void BindBlob(sqlite3_stmt* s, int i, std::string_view bytes) {
  sqlite3_bind_blob(s, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
}

// Column `column` of the current row as a string (text or blob).
inline std::string Text(sqlite3_stmt* s, int column) {
  const void* p = sqlite3_column_blob(s, column);
  return p ? std::string(static_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(s, column)))
           : std::string();
}

inline Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    Status s = Internal("sqlite: {} ({})", error ? error : "unknown error", sql);
    sqlite3_free(error);
    return s;
  }
  return {};
}

}  // namespace fanout
