// engine.cc - routes verbs to reactors and gathers their event batches.
#include "engine.h"

#include <cstring>

#include <algorithm>
#include <new>

#include "errors.h"

namespace myriad {

namespace {
Command simple(CommandType t, uint64_t arg = 0, uint64_t arg2 = 0) {
  Command c{};
  c.type = t;
  c.arg = arg;
  c.arg2 = arg2;
  return c;
}
}  // namespace

Engine::Engine(uint32_t threads, EventSink* sink) : sink_(sink) {
  if (threads < 1) threads = 1;
  if (threads > kMaxReactors) threads = kMaxReactors;
  for (uint32_t i = 0; i < threads; i++) reactors_.emplace_back(new Reactor(this, i));
}

Engine::~Engine() { stop(); }

int Engine::start() {
  if (started_) return 0;
  for (auto& r : reactors_) {
    int err = r->start();
    if (err != 0) {
      stop();
      return err;
    }
  }
  started_ = true;
  return 0;
}

void Engine::halt() {
  for (auto& r : reactors_) r->halt();
}

void Engine::stop() {
  for (auto& r : reactors_) r->stop();
  // Reactors are gone; listeners they still watched are closed here.
  std::lock_guard<std::mutex> lock(listeners_mu_);
  for (auto& kv : listeners_) {
    if (kv.second->fd != kInvalidSock) close_socket(kv.second->fd);
    delete kv.second;
  }
  listeners_.clear();
  started_ = false;
}

Conn* Engine::conn(uint64_t id, Reactor** r) {
  ConnRef ref = split_conn_id(id);
  if (ref.reactor >= reactors_.size()) return nullptr;
  *r = reactors_[ref.reactor].get();
  return (*r)->conn_for(ref.slot, ref.gen);
}

void Engine::post_to_conn(uint64_t id, Command&& c) {
  ConnRef ref = split_conn_id(id);
  if (ref.reactor >= reactors_.size()) {
    if (c.bytes != nullptr) c.bytes->release();
    return;
  }
  c.slot = ref.slot;
  c.gen = ref.gen;
  reactors_[ref.reactor]->post(std::move(c));
}

void Engine::listen(uint64_t request_id, const ListenRequest& req) {
  Command c{};
  c.type = CommandType::Listen;
  c.arg = request_id;
  c.ptr = new ListenRequest(req);
  reactors_[0]->post(std::move(c));
}

void Engine::close_listener(uint32_t listener_id) {
  Listener* l = nullptr;
  {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    auto it = listeners_.find(listener_id);
    if (it == listeners_.end()) return;
    l = it->second;
    if (l->closing) return;
    l->closing = true;
  }
  post_to_all(CommandType::DetachListener, 0, 0, nullptr, l);
}

void Engine::register_listener(Listener* l) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  l->id = next_listener_id_++;
  listeners_[l->id] = l;
}

void Engine::attach_everywhere(Listener* l) {
  l->attached.store(static_cast<uint32_t>(reactors_.size()), std::memory_order_release);
  post_to_all(CommandType::AttachListener, 0, 0, nullptr, l);
}

void Engine::forget_listener(Listener* l) {
  {
    std::lock_guard<std::mutex> lock(listeners_mu_);
    listeners_.erase(l->id);
  }
  delete l;
}

void Engine::connect(uint64_t request_id, const ConnectRequest& req) {
  Command c{};
  c.type = CommandType::Connect;
  c.arg = request_id;
  c.ptr = new ConnectRequest(req);
  uint32_t i = next_reactor_.fetch_add(1, std::memory_order_relaxed) % threads();
  reactors_[i]->post(std::move(c));
}

uint32_t Engine::dial_plan(DialPlan&& plan) {
  const uint32_t total = plan.unstarted;
  const uint32_t n = std::min(std::min(threads(), std::max(plan.cap, 1u)), std::max(total, 1u));
  const uint32_t first = next_reactor_.fetch_add(n, std::memory_order_relaxed) % threads();
  std::vector<uint32_t>& used = plan_shares_[plan.id];
  used.clear();
  // Each source's quota is dealt out over the shares in turn, carrying the remainder's position
  // on, so that every share gets floor or ceil of total / n attempts (at least one each) and of
  // each source's quota.
  uint32_t offset = 0;
  std::vector<DialPlan*> shares(n, nullptr);
  for (uint32_t r = 0; r < n; r++) {
    auto* sh = new DialPlan();
    sh->id = plan.id;
    sh->base = plan.base;
    sh->sources = plan.sources;
    sh->dropped_until.assign(plan.sources.size(), 0);
    sh->moved_out.assign(plan.sources.size(), 0);
    sh->quota.assign(plan.sources.size(), 0);
    sh->pooled = plan.pooled;
    sh->cap = plan.cap / n + (r < plan.cap % n ? 1u : 0u);
    sh->cursor = r % std::max<uint32_t>(1, static_cast<uint32_t>(plan.sources.size()));
    shares[r] = sh;
  }
  for (size_t s = 0; s < plan.quota.size(); s++) {
    const uint32_t q = plan.quota[s];
    for (uint32_t r = 0; r < n; r++) {
      const uint32_t extra = ((r + n - offset) % n) < q % n ? 1u : 0u;
      shares[r]->quota[s] = q / n + extra;
      shares[r]->unstarted += q / n + extra;
    }
    offset = (offset + q % n) % n;
  }
  for (uint32_t r = 0; r < n; r++) {
    const uint32_t idx = (first + r) % threads();
    used.push_back(idx);
    Command c{};
    c.type = CommandType::DialPlanStart;
    c.ptr = shares[r];
    reactors_[idx]->post(std::move(c));
  }
  return n;
}

void Engine::dial_plan_credit(uint64_t plan_id, uint32_t more) {
  auto it = plan_shares_.find(plan_id);
  if (it == plan_shares_.end() || more == 0) return;
  // Only shares still running: a finished one returns what reaches it anyway (DialPlanReturned),
  // but JS would then have to credit again.
  const auto& used = it->second;
  const uint32_t n = static_cast<uint32_t>(used.size());
  if (n == 0) return;
  for (uint32_t k = 0; k < n; k++) {
    const uint32_t part = more / n + (k < more % n ? 1u : 0u);
    if (part == 0) continue;
    // Rotate who gets the remainder, so single credits spread over the shares.
    reactors_[used[(k + plan_credit_turn_) % n]]->post(simple(CommandType::DialPlanCredit, plan_id, part));
  }
  plan_credit_turn_++;
}

void Engine::dial_plan_cancel(uint64_t plan_id) {
  auto it = plan_shares_.find(plan_id);
  if (it == plan_shares_.end()) return;
  for (uint32_t idx : it->second) reactors_[idx]->post(simple(CommandType::DialPlanCancel, plan_id));
  plan_shares_.erase(it);
}

uint64_t Engine::write(uint64_t id, SharedBytes* bytes, uint64_t high_water) {
  Reactor* r = nullptr;
  Conn* c = conn(id, &r);
  if (c == nullptr) {
    bytes->release();
    return 0;
  }
  const uint64_t total = c->buffered.fetch_add(bytes->size(), std::memory_order_acq_rel) + bytes->size();
  if (total >= high_water) c->want_drain.store(true, std::memory_order_relaxed);
  Command cmd{};
  cmd.type = CommandType::Write;
  cmd.bytes = bytes;
  post_to_conn(id, std::move(cmd));
  return total;
}

void Engine::end(uint64_t id, SharedBytes* last_bytes) {
  Reactor* r = nullptr;
  Conn* c = conn(id, &r);
  if (c == nullptr) {
    if (last_bytes != nullptr) last_bytes->release();
    return;
  }
  if (last_bytes != nullptr) c->buffered.fetch_add(last_bytes->size(), std::memory_order_acq_rel);
  Command cmd{};
  cmd.type = CommandType::End;
  cmd.bytes = last_bytes;
  post_to_conn(id, std::move(cmd));
}


void Engine::destroy(uint64_t id) { post_to_conn(id, simple(CommandType::Destroy)); }
void Engine::pause(uint64_t id) { post_to_conn(id, simple(CommandType::Pause)); }
void Engine::resume(uint64_t id) { post_to_conn(id, simple(CommandType::Resume)); }
void Engine::set_nodelay(uint64_t id, bool on) { post_to_conn(id, simple(CommandType::SetNoDelay, on)); }
void Engine::set_keepalive(uint64_t id, bool on, uint32_t delay_ms) {
  post_to_conn(id, simple(CommandType::SetKeepAlive, on, delay_ms));
}
void Engine::set_timeout(uint64_t id, uint32_t ms) { post_to_conn(id, simple(CommandType::SetTimeout, ms)); }

void Engine::set_max_buffered(uint64_t id, uint32_t bytes, SlowPolicy policy) {
  post_to_conn(id, simple(CommandType::SetMaxBuffered, bytes, static_cast<uint64_t>(policy)));
}

void Engine::post_to_all(CommandType type, uint64_t arg, uint64_t arg2, SharedBytes* bytes, void* ptr) {
  // One reference per reactor; the reactors add one per member write.
  if (bytes != nullptr && reactors_.size() > 1) bytes->retain(static_cast<uint32_t>(reactors_.size() - 1));
  for (auto& r : reactors_) {
    Command c = simple(type, arg, arg2);
    c.bytes = bytes;
    c.ptr = ptr;
    r->post(std::move(c));
  }
}

void Engine::broadcast(uint32_t owner, SharedBytes* bytes, uint64_t except) {
  broadcasts_.fetch_add(1, std::memory_order_relaxed);
  post_to_all(CommandType::Broadcast, owner, except, bytes);
}

void Engine::group_broadcast(uint32_t group, SharedBytes* bytes, uint64_t except) {
  broadcasts_.fetch_add(1, std::memory_order_relaxed);
  post_to_all(CommandType::GroupBroadcast, group, except, bytes);
}

void Engine::group_add(uint32_t group, uint64_t id) { post_to_conn(id, simple(CommandType::GroupAdd, group)); }
void Engine::group_delete(uint32_t group, uint64_t id) { post_to_conn(id, simple(CommandType::GroupDelete, group)); }
void Engine::group_clear(uint32_t group) { post_to_all(CommandType::GroupClear, group, 0, nullptr); }

bool Engine::endpoints(uint64_t id, Endpoint* local, Endpoint* remote) {
  Reactor* r = nullptr;
  Conn* c = conn(id, &r);
  if (c == nullptr) return false;
  // Field by field: the reactor may fill in local.port meanwhile (see below); the rest does not
  // change while the slot is JS's.
  local->family = c->local.family;
  std::memcpy(local->addr, c->local.addr, sizeof local->addr);
  local->scope_id = c->local.scope_id;
  local->port = load_port(c);
  *remote = c->remote;
  if (local->port == 0 && remote->port != 0) {
    // A dialed connection whose reactor did not ask for its port (see the Linux backend's
    // connect completion): ask the kernel here. The one socket call made off the reactor
    // thread, and a read-only one. The reactor fills the port in and then clears Conn::fd before
    // it closes the socket: an fd unchanged after the call means the call saw this connection's
    // socket; a cleared one means the port is filled in by now.
    const sock_t fd = peek_fd(c);
    Endpoint ep;
    if (fd != kInvalidSock && socket_local_endpoint(fd, &ep) && peek_fd(c) == fd)
      local->port = ep.port;
    else
      local->port = load_port(c);  // the fd is cleared (or was, meanwhile): filled in by now
    // Still unknown: JS destroyed it and the socket is gone (nothing was filled in). Nothing,
    // rather than port 0, as node:net answers for a destroyed socket.
    if (local->port == 0) return false;
  }
  // JS reads a connection's endpoints before it lets the slot go (Connection._onClose), so the
  // slot is still this connection's; should that ever not hold, a generation moved on by a
  // reuse shows it, and nothing read is trusted.
  // (A read-modify-write with release: the reads above cannot move after it, and it reads the
  // newest generation. The seqlock reader's second check, without a fence TSan cannot model.)
  return c->gen.fetch_add(0, std::memory_order_release) == split_conn_id(id).gen;
}

uint64_t Engine::buffered(uint64_t id) {
  Reactor* r = nullptr;
  Conn* c = conn(id, &r);
  return c == nullptr ? 0 : c->buffered.load(std::memory_order_acquire);
}

void Engine::notify_ready() {
  if (!notify_pending_.exchange(true, std::memory_order_acq_rel)) sink_->notify();
}

void Engine::drain(std::vector<Batch>& out, size_t budget) {
  // Round-robin over reactors, so a budget-limited drain does not always favour reactor 0.
  const size_t n = reactors_.size();
  const size_t first = drain_from_;
  const size_t had = out.size();
  drain_from_ = n == 0 ? 0 : (drain_from_ + 1) % n;
  for (size_t i = 0; i < n; i++) {
    reactors_[(first + i) % n]->take_batches(out, budget, out.empty());
    if (budget == 0) break;
  }
  for (size_t k = had; k < out.size(); k++)
    for (uint64_t id : out[k].plans_done) forget_plan_share(id, out[k].reactor);
}

void Engine::forget_plan_share(uint64_t plan_id, uint32_t reactor) {
  auto it = plan_shares_.find(plan_id);
  if (it == plan_shares_.end()) return;  // cancelled: nothing more is sent to it
  std::vector<uint32_t>& used = it->second;
  for (size_t k = 0; k < used.size(); k++)
    if (used[k] == reactor) {
      used.erase(used.begin() + static_cast<std::ptrdiff_t>(k));
      break;
    }
}

bool Engine::finish_delivery() {
  for (auto& r : reactors_)
    if (r->has_batches()) return true;  // the flag stays set: the caller drains again
  notify_pending_.store(false, std::memory_order_seq_cst);
  // A batch published between the check above and the store saw the flag still set and did not
  // notify: look once more, and take the delivery back if so.
  for (auto& r : reactors_)
    if (r->has_batches()) return !notify_pending_.exchange(true, std::memory_order_acq_rel);
  return false;
}

void Engine::release(std::vector<Batch>& handled) {
  std::vector<std::vector<uint32_t>*> per(reactors_.size(), nullptr);
  for (Batch& b : handled) {
    if (b.closed_slots.empty() || b.reactor >= reactors_.size()) continue;
    if (per[b.reactor] == nullptr) per[b.reactor] = new std::vector<uint32_t>();
    per[b.reactor]->insert(per[b.reactor]->end(), b.closed_slots.begin(), b.closed_slots.end());
  }
  for (size_t i = 0; i < per.size(); i++) {
    if (per[i] == nullptr) continue;
    Command c{};
    c.type = CommandType::Release;
    c.ptr = per[i];
    reactors_[i]->post(std::move(c));
  }
}

EngineStats Engine::stats() {
  EngineStats s;
  s.broadcasts = broadcasts_.load(std::memory_order_relaxed);
  for (auto& r : reactors_) {
    ReactorCounters& k = r->counters;
    s.accepted += k.accepted.load(std::memory_order_relaxed);
    s.dialed += k.dialed.load(std::memory_order_relaxed);
    s.connect_failures += k.connect_failures.load(std::memory_order_relaxed);
    s.accept_errors += k.accept_errors.load(std::memory_order_relaxed);
    s.closed += k.closed.load(std::memory_order_relaxed);
    s.bytes_read += k.bytes_read.load(std::memory_order_relaxed);
    s.bytes_written += k.bytes_written.load(std::memory_order_relaxed);
    s.messages_queued += k.messages_queued.load(std::memory_order_relaxed);
    s.messages_dropped += k.messages_dropped.load(std::memory_order_relaxed);
    s.slow_closed += k.slow_closed.load(std::memory_order_relaxed);
    s.bytes_buffered += r->bytes_buffered();
    const uint64_t live = k.live.load(std::memory_order_relaxed);
    s.live += live;
    s.reactors.push_back(EngineStats::PerReactor{k.events.load(std::memory_order_relaxed),
                                                 k.wakeups.load(std::memory_order_relaxed),
                                                 k.batches.load(std::memory_order_relaxed), live});
  }
  return s;
}

}  // namespace myriad
