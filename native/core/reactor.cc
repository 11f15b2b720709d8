// reactor.cc - the platform-independent half of a reactor: commands in, events out, the
// connection state machine, timers. The backend (epoll/IOCP) calls the handlers defined here.
#include "reactor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>

#include "engine.h"
#include "errors.h"

namespace myriad {

namespace {
// A batch whose arena holds little is copied into a right-sized block so the big arena can be
// reused at once and a JS Buffer kept alive by the user pins only what it shows.
constexpr size_t kSmallArena = 16 * 1024;
// Reads need at least this much room in the arena; less, and the batch is flushed first.
constexpr size_t kMinReadSpace = 16 * 1024;
}  // namespace

Reactor::Reactor(Engine* engine, uint32_t index) : engine_(engine), index_(index) {}

Reactor::~Reactor() {
  stop();
  // Commands posted after the thread stopped (e.g. an Adopt during Engine::stop) own resources.
  for (Command& cmd : inbox_) drop_command(cmd);
  inbox_.clear();
  for (DialPlan* p : plans_) delete p;
  plans_.clear();
  for (uint32_t i = 0; i < kMaxChunks; i++) delete[] chunks_[i].load(std::memory_order_relaxed);
  std::free(spare_arena_);
}

int Reactor::start() {
  int err = backend_init();
  if (err != 0) return err;
  now_ms_ = now_ms();
  timers_.reset(now_ms_);
  try {
    thread_ = std::thread(&Reactor::run, this);
  } catch (const std::system_error&) {
    backend_destroy();
    return err_nomem();
  }
  started_ = true;
  return 0;
}

void Reactor::halt() {
  if (!started_ || halted_) return;
  Command c{};
  c.type = CommandType::Stop;
  post(std::move(c));
  thread_.join();
  halted_ = true;
}

void Reactor::stop() {
  if (!started_) return;
  halt();
  halted_ = false;
  started_ = false;
  // The thread is gone: this thread now owns every socket. Close them and drop what was queued.
  for (uint32_t s = 0; s < nslots_; s++) {
    Conn* conn = slot(s);
    if (conn->fd != kInvalidSock) backend_close(conn);
    conn->wq.clear();
  }
  std::vector<Command> left;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    left.swap(inbox_);
  }
  for (Command& cmd : left) drop_command(cmd);
  for (DialPlan* p : plans_) delete p;
  plans_.clear();
  backend_destroy();
}

void Reactor::post(Command&& c) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.push_back(c);
  }
  // One wake-up per drain of the inbox, however many commands arrive meanwhile.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) backend_wake();
}

void Reactor::post_many(std::vector<Command>& cs) {
  if (cs.empty()) return;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.insert(inbox_.end(), cs.begin(), cs.end());
  }
  cs.clear();
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) backend_wake();
}

void Reactor::run() {
  bool stopping = false;
  while (!stopping) {
    int timeout = timers_.next_timeout_ms(now_ms_);
    if (!batch_.events.empty()) {
      const int hold = draining_ ? 0 : accept_hold_ms();
      if (hold > 0) {
        // A storm: keep collecting accepts for a while, and stop waking for each new one (they
        // wait in the kernel's accept queue, which the pass after the hold empties).
        if (!accepts_held_) {
          backend_hold_accepts(true);
          accepts_held_ = true;
        }
        if (timeout < 0 || hold < timeout) timeout = hold;
      } else if (accepts_held_) {
        // The hold is over: one more pass, without waiting, takes what queued up meanwhile.
        backend_hold_accepts(false);
        accepts_held_ = false;
        draining_ = true;
        timeout = 0;
      } else {
        flush_batch();
        draining_ = false;
      }
    }
    if (!plans_deferred_.empty()) timeout = 0;
    more_accepts_ = false;
    turn_++;
    backend_poll(timeout);
    now_ms_ = now_ms();
    counters.wakeups.fetch_add(1, std::memory_order_relaxed);

    // Clear the flag before taking the inbox: a command posted after the swap then wakes us.
    wake_pending_.store(false, std::memory_order_seq_cst);
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      inbox_work_.swap(inbox_);
    }
    for (Command& c : inbox_work_) {
      if (stopping) {
        drop_command(c);  // after Stop: nothing more is done
        continue;
      }
      if (c.type == CommandType::Stop)
        stopping = true;
      else
        handle(c);
    }
    inbox_work_.clear();
    timers_.expire(now_ms_, [this](TimerNode* n) { on_timer(slot(n->owner)); });
    if (!plans_deferred_.empty() && !stopping) pump_deferred_plans();
  }
  flush_batch();
}

void Reactor::drop_command(Command& c) {
  if (c.bytes != nullptr) c.bytes->release();
  switch (c.type) {
    case CommandType::Listen: delete static_cast<ListenRequest*>(c.ptr); break;
    case CommandType::Connect: delete static_cast<ConnectRequest*>(c.ptr); break;
    case CommandType::DialPlanStart: delete static_cast<DialPlan*>(c.ptr); break;
    case CommandType::Release: delete static_cast<std::vector<uint32_t>*>(c.ptr); break;
    case CommandType::Adopt: {
      auto* a = static_cast<Adopted*>(c.ptr);
      close_socket(a->fd);
      delete a;
      break;
    }
    default: break;
  }
}

Conn* Reactor::live_conn(uint32_t s, uint32_t gen) {
  Conn* c = slot(s);
  if (c == nullptr || c->gen != gen || (c->flags & kLive) == 0) return nullptr;
  return c;
}

Conn* Reactor::conn_for(uint32_t s, uint32_t gen) {
  if (s >= kMaxSlots) return nullptr;
  Conn* ch = chunks_[s / kChunk].load(std::memory_order_acquire);
  if (ch == nullptr) return nullptr;
  Conn* c = &ch[s % kChunk];
  return c->gen.load(std::memory_order_relaxed) == gen ? c : nullptr;
}

void Reactor::handle(Command& cmd) {
  switch (cmd.type) {
    case CommandType::Write:
    case CommandType::End: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c == nullptr || (c->flags & (kEndRequested | kConnecting)) != 0) {
        if (cmd.bytes != nullptr) cmd.bytes->release();
        break;
      }
      if (cmd.bytes != nullptr) handle_write(c, cmd.bytes);
      if (cmd.type == CommandType::End && (c->flags & kLive) != 0) {
        c->flags |= kEndRequested;
        if (c->wq.empty()) finish_write_side(c);
      }
      break;
    }
    case CommandType::Destroy: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c != nullptr) {
        c->flags |= kDestroyRequested;
        close_conn(c, false);
      }
      break;
    }
    case CommandType::Pause:
    case CommandType::Resume: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c == nullptr) break;
      if (cmd.type == CommandType::Pause)
        c->flags |= kPaused;
      else
        c->flags &= ~kPaused;
      backend_update_interest(c);
      break;
    }
    case CommandType::SetNoDelay: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c != nullptr) backend_set_nodelay(c, cmd.arg != 0);
      break;
    }
    case CommandType::SetKeepAlive: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c != nullptr) backend_set_keepalive(c, cmd.arg != 0, static_cast<uint32_t>(cmd.arg2));
      break;
    }
    case CommandType::SetTimeout: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c == nullptr || (c->flags & kConnecting) != 0) break;
      c->timeout_ms = static_cast<uint32_t>(cmd.arg);
      c->flags &= ~kTimeoutFired;
      c->last_active_ms = now_ms_;
      if (c->timeout_ms == 0)
        timers_.cancel(&c->timer);
      else
        arm_timer(c);
      break;
    }
    case CommandType::Listen: {
      auto* req = static_cast<ListenRequest*>(cmd.ptr);
      handle_listen(req, cmd.arg);
      delete req;
      break;
    }
    case CommandType::AttachListener: {
      auto* l = static_cast<Listener*>(cmd.ptr);
      size_t idx = 0;
      while (idx < listeners_.size() && listeners_[idx] != nullptr) idx++;
      if (idx == listeners_.size()) listeners_.push_back(nullptr);
      listeners_[idx] = l;
      backend_attach(l, static_cast<uint32_t>(idx));
      break;
    }
    case CommandType::DetachListener: {
      auto* l = static_cast<Listener*>(cmd.ptr);
      for (size_t i = 0; i < listeners_.size(); i++)
        if (listeners_[i] == l) {
          backend_detach(l);
          listeners_[i] = nullptr;
        }
      if (l->attached.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        close_socket(l->fd);
        l->fd = kInvalidSock;
        emit(EventType::ListenerClosed, l->id);
        engine_->forget_listener(l);
      }
      break;
    }
    case CommandType::Connect: {
      auto* req = static_cast<ConnectRequest*>(cmd.ptr);
      backend_connect(req, cmd.arg);
      delete req;
      break;
    }
    case CommandType::DialPlanStart: {
      auto* p = static_cast<DialPlan*>(cmd.ptr);
      plans_.push_back(p);
      plan_pump(p);
      break;
    }
    case CommandType::DialPlanCredit: {
      DialPlan* p = plan_of(cmd.arg);
      if (p == nullptr) {
        // The share finished before the engine heard of it: JS counted this credit as held.
        emit(EventType::DialPlanReturned, static_cast<double>(cmd.arg), 0, static_cast<double>(cmd.arg2));
        break;
      }
      p->cap += static_cast<uint32_t>(cmd.arg2);  // returned with the cap in DialPlanDone
      plan_pump(p);
      break;
    }
    case CommandType::DialPlanCancel: {
      // JS has settled the call (aborted, or done): start nothing more. What is in flight
      // still reports (JS destroys a late connection), then the share's DialPlanDone comes.
      DialPlan* p = plan_of(cmd.arg);
      if (p == nullptr) break;
      p->cancelled = true;
      const uint32_t dropped = p->unstarted;
      p->unstarted = 0;
      for (uint32_t& q : p->quota) q = 0;
      // Told now, not at DialPlanDone: in-flight attempts can take minutes (SYN retries), and
      // the slots these held serve the dialer's other calls meanwhile.
      if (dropped != 0) emit(EventType::DialPlanReturned, static_cast<double>(p->id), dropped, 0);
      plan_pump(p);
      break;
    }
    case CommandType::Release: {
      auto* slots = static_cast<std::vector<uint32_t>*>(cmd.ptr);
      for (uint32_t s : *slots) release_slot(s);
      delete slots;
      break;
    }
    case CommandType::ResumeReading:
      resume_throttled();
      break;
    case CommandType::Adopt: {
      auto* a = static_cast<Adopted*>(cmd.ptr);
      on_accepted(a->owner, a->conn, a->fd, a->local, a->remote);
      delete a;
      break;
    }
    case CommandType::SetMaxBuffered: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c == nullptr) break;
      c->max_buffered = static_cast<uint32_t>(cmd.arg);
      c->slow_policy = static_cast<SlowPolicy>(cmd.arg2);
      break;
    }
    case CommandType::Broadcast: {
      // To every established connection of one server (owner), but the one it skips.
      const uint32_t owner = static_cast<uint32_t>(cmd.arg);
      for (uint32_t s = 0; s < nslots_; s++) {
        Conn* c = slot(s);
        if ((c->flags & (kLive | kReported)) != (kLive | kReported) || c->owner != owner) continue;
        if (cmd.arg2 != 0 && id_of(c) == cmd.arg2) continue;
        broadcast_one(c, cmd.bytes);
      }
      cmd.bytes->release();
      break;
    }
    case CommandType::GroupBroadcast: {
      auto it = groups_.find(static_cast<uint32_t>(cmd.arg));
      if (it != groups_.end()) {
        // broadcast_one may close a member (SlowPolicy::Close), which edits the set: walk a copy.
        std::vector<uint32_t> members(it->second.begin(), it->second.end());
        for (uint32_t s : members) {
          Conn* c = slot(s);
          if (c == nullptr || (c->flags & kLive) == 0) continue;
          if (cmd.arg2 != 0 && id_of(c) == cmd.arg2) continue;
          broadcast_one(c, cmd.bytes);
        }
      }
      cmd.bytes->release();
      break;
    }
    case CommandType::GroupAdd: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c == nullptr || (c->flags & kReported) == 0) break;
      const uint32_t gid = static_cast<uint32_t>(cmd.arg);
      if (groups_[gid].insert(c->slot).second) conn_groups_[c->slot].push_back(gid);
      break;
    }
    case CommandType::GroupDelete: {
      Conn* c = live_conn(cmd.slot, cmd.gen);
      if (c == nullptr) break;
      const uint32_t gid = static_cast<uint32_t>(cmd.arg);
      auto g = groups_.find(gid);
      if (g == groups_.end() || g->second.erase(c->slot) == 0) break;
      if (g->second.empty()) groups_.erase(g);
      auto& mine = conn_groups_[c->slot];
      for (size_t i = 0; i < mine.size(); i++)
        if (mine[i] == gid) {
          mine[i] = mine.back();
          mine.pop_back();
          break;
        }
      if (mine.empty()) conn_groups_.erase(c->slot);
      break;
    }
    case CommandType::GroupClear: {
      auto g = groups_.find(static_cast<uint32_t>(cmd.arg));
      if (g == groups_.end()) break;
      for (uint32_t s : g->second) {
        auto& mine = conn_groups_[s];
        for (size_t i = 0; i < mine.size(); i++)
          if (mine[i] == g->first) {
            mine[i] = mine.back();
            mine.pop_back();
            break;
          }
        if (mine.empty()) conn_groups_.erase(s);
      }
      groups_.erase(g);
      break;
    }
    case CommandType::Stop:
      break;
  }
}

void Reactor::handle_listen(ListenRequest* req, uint64_t request_id) {
  auto* l = new (std::nothrow) Listener();
  if (l == nullptr) {
    emit(EventType::ListenFailed, static_cast<double>(request_id), err_nomem(),
         static_cast<double>(Syscall::Socket));
    return;
  }
  l->opts = *req;
  Syscall failed = Syscall::None;
  int err = backend_listen(l, &failed);
  if (err != 0) {
    emit(EventType::ListenFailed, static_cast<double>(request_id), err, static_cast<double>(failed));
    delete l;
    return;
  }
  engine_->register_listener(l);
  emit(EventType::ListenOk, static_cast<double>(request_id), l->id, l->opts.local.port);
  engine_->attach_everywhere(l);
}

void Reactor::handle_write(Conn* c, SharedBytes* bytes) {
  if (bytes->size() == 0) {
    bytes->release();
    return;
  }
  if (!c->wq.push(bytes, 0)) {
    bytes->release();
    fail_conn(c, err_nomem(), Syscall::Write);
    return;
  }
  backend_flush(c);
}

void Reactor::broadcast_one(Conn* c, SharedBytes* bytes) {
  if ((c->flags & (kEndRequested | kConnecting | kClosed)) != 0) return;
  const uint64_t size = bytes->size();
  if (c->max_buffered != 0 && c->buffered.load(std::memory_order_acquire) + size > c->max_buffered) {
    switch (c->slow_policy) {
      case SlowPolicy::Drop:
        counters.messages_dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      case SlowPolicy::Close:
        counters.slow_closed.fetch_add(1, std::memory_order_relaxed);
        fail_conn(c, kErrSlowConsumer, Syscall::Write);
        return;
      case SlowPolicy::Buffer:
        break;
    }
  }
  c->buffered.fetch_add(size, std::memory_order_acq_rel);
  counters.messages_queued.fetch_add(1, std::memory_order_relaxed);
  bytes->retain();
  handle_write(c, bytes);
}

void Reactor::drop_group_memberships(uint32_t s) {
  auto mine = conn_groups_.find(s);
  if (mine == conn_groups_.end()) return;
  for (uint32_t gid : mine->second) {
    auto g = groups_.find(gid);
    if (g == groups_.end()) continue;
    g->second.erase(s);
    if (g->second.empty()) groups_.erase(g);
  }
  conn_groups_.erase(mine);
}

uint64_t Reactor::bytes_buffered() {
  uint64_t total = 0;
  for (uint32_t i = 0; i < kMaxChunks; i++) {
    Conn* ch = chunks_[i].load(std::memory_order_acquire);
    if (ch == nullptr) break;
    for (uint32_t k = 0; k < kChunk; k++) total += ch[k].buffered.load(std::memory_order_relaxed);
  }
  return total;
}

void Reactor::on_write_progress(Conn* c, size_t n) {
  if (n > 0) {
    c->wq.consume(n);
    c->buffered.fetch_sub(n, std::memory_order_acq_rel);
    counters.bytes_written.fetch_add(n, std::memory_order_relaxed);
    touch(c);
  }
  if (!c->wq.empty()) return;
  if (c->want_drain.load(std::memory_order_relaxed) &&
      c->buffered.load(std::memory_order_acquire) == 0 &&
      c->want_drain.exchange(false, std::memory_order_acq_rel))
    emit(EventType::Drain, static_cast<double>(id_of(c)));
  if ((c->flags & kEndRequested) != 0) finish_write_side(c);
}

void Reactor::finish_write_side(Conn* c) {
  if ((c->flags & (kWriteShut | kClosed)) != 0) return;
  backend_shutdown_write(c);
  if ((c->flags & kClosed) != 0) return;  // shutdown failed and closed it
  c->flags |= kWriteShut;
  maybe_close(c);
}

void Reactor::maybe_close(Conn* c) {
  if ((c->flags & kReadEof) != 0 && (c->flags & kWriteShut) != 0) close_conn(c, false);
}

void Reactor::close_conn(Conn* c, bool errored) {
  if ((c->flags & kClosed) != 0) return;
  if ((c->flags & (kReported | kDestroyRequested)) == kReported && c->local.port == 0 && c->remote.port != 0 &&
      c->fd != kInvalidSock) {
    // A dialed connection's port nobody asked for yet: JS may still ask (a connection kept for
    // its unread bytes, or held for its first turn, reads its endpoints as the Close comes), and
    // once the socket is gone only this copy can answer. Not when JS destroyed it: it reads
    // nothing more then (as node:net's socket forgets its address once destroyed).
    Endpoint ep;
    if (socket_local_endpoint(c->fd, &ep)) store_port(c, ep.port);
  }
  backend_close(c);
  c->wq.clear();
  c->buffered.store(0, std::memory_order_relaxed);
  timers_.cancel(&c->timer);
  drop_group_memberships(c->slot);
  const bool reported = (c->flags & kReported) != 0;
  c->flags = (c->flags & kReported) | kClosed | (errored ? kErrored : 0u);
  if (reported) {
    counters.live.fetch_sub(1, std::memory_order_relaxed);
    counters.closed.fetch_add(1, std::memory_order_relaxed);
    emit(EventType::Close, static_cast<double>(id_of(c)), errored ? 1 : 0);
    batch_.closed_slots.push_back(c->slot);
  } else {
    release_slot(c->slot);
  }
}

void Reactor::release_slot(uint32_t s) {
  Conn* c = slot(s);
  if (c == nullptr || (c->flags & kClosed) == 0) return;
  uint32_t next = (c->gen.load(std::memory_order_relaxed) + 1) & kGenMask;
  if (next == 0) next = 1;
  // Acquire: no write below moves before the new generation (Engine::endpoints checks it after
  // reading the fields). An exchange rather than a fence, which TSan does not model.
  c->gen.exchange(next, std::memory_order_acq_rel);
  c->flags = 0;
  c->owner = 0;
  c->timeout_ms = 0;
  c->max_buffered = 0;
  c->slow_policy = SlowPolicy::Close;
  c->request_id = 0;
  c->source_tag = 0;
  c->buffered.store(0, std::memory_order_relaxed);
  c->want_drain.store(false, std::memory_order_relaxed);
  c->local = Endpoint();
  c->remote = Endpoint();
  c->be = BackendConn();
  free_slots_.push_back(s);
}

Conn* Reactor::alloc_conn(sock_t fd) {
  uint32_t s;
  if (!free_slots_.empty()) {
    s = free_slots_.back();
    free_slots_.pop_back();
  } else {
    if (nslots_ >= kMaxSlots) return nullptr;
    s = nslots_;
    if (s % kChunk == 0) {
      Conn* ch = new (std::nothrow) Conn[kChunk];
      if (ch == nullptr) return nullptr;
      for (uint32_t i = 0; i < kChunk; i++) {
        ch[i].slot = s + i;
        ch[i].timer.owner = s + i;
      }
      chunks_[s / kChunk].store(ch, std::memory_order_release);
    }
    nslots_++;
  }
  Conn* c = slot(s);
  publish_fd(c, fd);
  c->flags = kLive;
  c->last_active_ms = now_ms_;
  return c;
}

void Reactor::setup_conn_options(Conn* c, const SocketOptions& o) {
  c->max_buffered = o.max_buffered;
  c->slow_policy = o.slow_policy;
  if (o.nodelay) backend_set_nodelay(c, true);
  if (o.keepalive) backend_set_keepalive(c, true, o.keepalive_delay_ms);
  c->timeout_ms = o.idle_timeout_ms;
  c->last_active_ms = now_ms_;
  if (c->timeout_ms != 0) arm_timer(c);
}

void Reactor::on_accepted(uint32_t owner, const SocketOptions& o, sock_t fd, const Endpoint& local,
                          const Endpoint& remote) {
  Conn* c = alloc_conn(fd);
  if (c == nullptr) {
    close_socket(fd);
    counters.accept_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  c->owner = owner;
  c->local = local;
  c->remote = remote;
  setup_conn_options(c, o);
  backend_update_interest(c);
  if ((c->flags & kClosed) != 0) return;  // registering failed and closed it, unseen by JS
  c->flags |= kReported;
  counters.accepted.fetch_add(1, std::memory_order_relaxed);
  counters.live.fetch_add(1, std::memory_order_relaxed);
  count_accept();
  emit(EventType::Accept, static_cast<double>(id_of(c)), c->owner);
}

void Reactor::on_accept_error(Listener* l, int err) {
  counters.accept_errors.fetch_add(1, std::memory_order_relaxed);
  emit(EventType::AcceptError, l->id, err);
}

void Reactor::on_connected(Conn* c) {
  if ((c->flags & kClosed) == 0 && c->local.same_as(c->remote)) {
    // TCP self-connect: nothing listened on the destination, and the kernel happened to pick
    // the destination's own port as the ephemeral source port, so the SYN met itself
    // (simultaneous open). The caller would otherwise get a "connection" to itself where it
    // should get ECONNREFUSED; Go's net package refuses these the same way.
    on_connect_failed(c, err_connrefused(), Syscall::Connect);
    return;
  }
  c->flags &= ~kConnecting;
  timers_.cancel(&c->timer);
  backend_update_interest(c);
  if ((c->flags & kClosed) != 0) return;  // fail_conn reported it as a failed connect
  c->flags |= kReported;
  c->last_active_ms = now_ms_;
  if (c->timeout_ms != 0) arm_timer(c);
  counters.dialed.fetch_add(1, std::memory_order_relaxed);
  counters.live.fetch_add(1, std::memory_order_relaxed);
  emit(EventType::Connected, static_cast<double>(id_of(c)), static_cast<double>(c->request_id), c->source_tag);
  if (c->source_tag != 0) {
    DialPlan* p = plan_of(c->request_id);
    if (p != nullptr) {
      p->in_flight--;
      plan_pump(p);  // the next attempt starts now, not after a round trip through JS
    }
  }
}

void Reactor::on_connect_failed(Conn* c, int err, Syscall sc) {
  counters.connect_failures.fetch_add(1, std::memory_order_relaxed);
  const uint64_t request_id = c->request_id;
  const uint16_t tag = c->source_tag;
  close_conn(c, true);  // not reported: the slot (and the descriptor) is free again at once
  if (tag != 0)
    plan_attempt_failed(request_id, tag, err, sc);
  else
    emit(EventType::ConnectFailed, static_cast<double>(request_id), err, static_cast<double>(sc));
}

void Reactor::on_dial_failed(const ConnectRequest& req, uint64_t request_id, int err, Syscall sc) {
  counters.connect_failures.fetch_add(1, std::memory_order_relaxed);
  if (req.source_tag != 0)
    plan_attempt_failed(request_id, req.source_tag, err, sc);
  else
    emit(EventType::ConnectFailed, static_cast<double>(request_id), err, static_cast<double>(sc));
}

// ---- DialPlans (connectMany() shares) ----

DialPlan* Reactor::plan_of(uint64_t id) {
  for (DialPlan* p : plans_)
    if (p->id == id) return p;
  return nullptr;
}

int Reactor::plan_next_source(DialPlan* p) {
  if (now_ms_ >= p->next_restore_ms) plan_restore_sources(p, UINT32_MAX);
  const uint32_t n = static_cast<uint32_t>(p->sources.size());
  for (uint32_t k = 0; k < n; k++) {
    const uint32_t i = (p->cursor + k) % n;
    if (p->quota[i] != 0 && p->dropped_until[i] == 0) {
      p->cursor = (i + 1) % n;
      return static_cast<int>(i);
    }
  }
  return -1;
}

void Reactor::plan_restore_sources(DialPlan* p, uint32_t except) {
  const uint32_t n = static_cast<uint32_t>(p->sources.size());
  uint64_t next = UINT64_MAX;
  for (uint32_t s = 0; s < n; s++) {
    if (p->dropped_until[s] == 0) continue;
    if (s == except || p->dropped_until[s] > now_ms_) {
      next = std::min(next, p->dropped_until[s]);
      continue;
    }
    p->dropped_until[s] = 0;
    // Take back what it gave the others, as far as they have not started it, evenly: the
    // quotas were JS's choice (the fewest live first), a drop only lent them out.
    uint32_t want = p->moved_out[s];
    p->moved_out[s] = 0;
    while (want > 0) {
      uint32_t donors = 0;
      for (uint32_t i = 0; i < n; i++)
        if (i != s && p->dropped_until[i] == 0 && p->quota[i] != 0) donors++;
      if (donors == 0) break;
      const uint32_t each = want / donors == 0 ? 1 : want / donors;
      for (uint32_t i = 0; i < n && want > 0; i++) {
        if (i == s || p->dropped_until[i] != 0 || p->quota[i] == 0) continue;
        const uint32_t take = std::min(std::min(each, p->quota[i]), want);
        p->quota[i] -= take;
        p->quota[s] += take;
        want -= take;
      }
    }
  }
  p->next_restore_ms = next;
}

bool Reactor::plan_drop_source(DialPlan* p, uint32_t s) {
  plan_restore_sources(p, s);  // one whose time is up can take its share back first
  const bool already = p->dropped_until[s] != 0;
  if (!already) {
    p->dropped_until[s] = now_ms_ + DialPlan::kSourceRetryMs;
    p->next_restore_ms = std::min(p->next_restore_ms, p->dropped_until[s]);
  }
  uint32_t left = 0;
  for (uint64_t until : p->dropped_until) left += until == 0 ? 1u : 0u;
  if (already) return left != 0;
  const uint32_t moved = p->quota[s];
  p->quota[s] = 0;
  if (left == 0) {
    p->unstarted -= moved;
    p->failed_unstarted += moved;
    return false;
  }
  // Its unstarted attempts go to the others, evenly, until it is tried again.
  p->moved_out[s] += moved;
  uint32_t k = 0;
  for (uint32_t i = 0; i < p->quota.size(); i++) {
    if (p->dropped_until[i] != 0) continue;
    p->quota[i] += moved / left + (k < moved % left ? 1 : 0);
    k++;
  }
  return true;
}

void Reactor::plan_attempt_failed(uint64_t request_id, uint16_t tag, int err, Syscall sc) {
  DialPlan* p = plan_of(request_id);
  if (p == nullptr) return;  // cannot happen: a share outlives its attempts
  p->in_flight--;
  if (p->pumping) {
    // Failed inside plan_pump, at once (socket(), bind() or connect() itself): what the budget
    // counts. Failures that come from the poll are bounded by what it returns per turn.
    if (p->turn != turn_) {
      p->turn = turn_;
      p->failed_this_turn = 0;
    }
    p->failed_this_turn++;
  }
  const uint32_t s = tag - 1u;
  if (p->pooled && !p->cancelled && (err == err_addrnotavail() || err == err_addrinuse())) {
    // This source cannot reach the destination (not on this host, or out of ports): drop it
    // for a while, and try this attempt again from another one, if any is left.
    if (plan_drop_source(p, s)) {
      const uint32_t n = static_cast<uint32_t>(p->sources.size());
      for (uint32_t k = 0; k < n; k++) {
        const uint32_t i = (p->cursor + k) % n;
        if (p->dropped_until[i] != 0) continue;
        p->quota[i]++;
        p->unstarted++;
        p->moved_out[s]++;
        plan_pump(p);
        return;
      }
    }
  }
  emit(EventType::ConnectFailed, static_cast<double>(p->id), err,
       static_cast<double>(static_cast<uint32_t>(sc) + 256u * tag));
  plan_pump(p);
}

void Reactor::plan_pump(DialPlan* p) {
  if (p->pumping) return;  // a failure inside the loop below: the loop goes on
  p->pumping = true;
  while (!p->cancelled && p->in_flight < p->cap && p->unstarted > 0) {
    if (p->turn == turn_ && p->failed_this_turn >= DialPlan::kPlanFailuresPerTurn) {
      // Failing fast (EMFILE, no route, out of ports without a pool...): the rest of this
      // reactor's work comes first; this share goes on next turn.
      if (!p->deferred) {
        p->deferred = true;
        plans_deferred_.push_back(p->id);
      }
      break;
    }
    const int i = plan_next_source(p);
    if (i < 0) break;
    p->quota[i]--;
    p->unstarted--;
    p->in_flight++;
    ConnectRequest req = p->base;
    req.local = p->sources[i];
    req.source_tag = static_cast<uint16_t>(i + 1);
    backend_connect(&req, p->id);  // may fail at once: plan_attempt_failed, without recursing
  }
  p->pumping = false;
  if (p->in_flight != 0 || (p->unstarted != 0 && !p->cancelled)) return;
  emit(EventType::DialPlanDone, static_cast<double>(p->id), p->failed_unstarted, p->cap);
  batch_.plans_done.push_back(p->id);
  for (size_t k = 0; k < plans_.size(); k++)
    if (plans_[k] == p) {
      plans_[k] = plans_.back();
      plans_.pop_back();
      break;
    }
  delete p;
}

void Reactor::pump_deferred_plans() {
  std::vector<uint64_t> ids;
  ids.swap(plans_deferred_);
  for (uint64_t id : ids) {
    DialPlan* p = plan_of(id);  // gone meanwhile (cancelled and done): nothing to do
    if (p == nullptr) continue;
    p->deferred = false;
    plan_pump(p);
  }
}

void Reactor::fail_conn(Conn* c, int err, Syscall sc) {
  if ((c->flags & kClosed) != 0) return;
  if ((c->flags & kReported) == 0) {
    // JS has not seen this connection: a dial fails as a connect, an accept vanishes quietly.
    if (c->request_id != 0)
      on_connect_failed(c, err, sc);
    else
      close_conn(c, true);
    return;
  }
  emit(EventType::Error, static_cast<double>(id_of(c)), err, static_cast<double>(sc));
  close_conn(c, true);
}

uint8_t* Reactor::read_space(size_t* len) {
  if (batch_.arena != nullptr && batch_.arena_cap - batch_.arena_used < kMinReadSpace) flush_batch();
  if (batch_.arena == nullptr) {
    if (spare_arena_ != nullptr) {
      batch_.arena = spare_arena_;
      spare_arena_ = nullptr;
    } else {
      batch_.arena = static_cast<uint8_t*>(std::malloc(kArenaSize));
      if (batch_.arena == nullptr) {
        *len = 0;
        return nullptr;
      }
    }
    batch_.arena_cap = kArenaSize;
    batch_.arena_used = 0;
  }
  size_t room = batch_.arena_cap - batch_.arena_used;
  *len = room < kReadBudget ? room : kReadBudget;
  return batch_.arena + batch_.arena_used;
}

bool Reactor::reading_allowed(Conn* c) {
  if (outbox_bytes_.load(std::memory_order_relaxed) <= kMaxOutboxBytes) return true;
  // JS is behind: stop reading this connection until it has drained the outbox.
  c->flags |= kThrottled;
  throttled_.push_back(c->slot);
  // Store, then look again (seq_cst here and in drain(): one side sees the other). JS may have
  // drained the outbox since the check above and found no throttled reader to resume; then no
  // drain may come again (these readers were the only traffic), so resume from here.
  has_throttled_.store(true, std::memory_order_seq_cst);
  if (outbox_bytes_.load(std::memory_order_seq_cst) <= kMaxOutboxBytes / 2 &&
      has_throttled_.exchange(false, std::memory_order_acq_rel)) {
    Command r{};
    r.type = CommandType::ResumeReading;
    post(std::move(r));
  }
  backend_update_interest(c);
  return false;
}

void Reactor::resume_throttled() {
  std::vector<uint32_t> slots;
  slots.swap(throttled_);
  for (uint32_t s : slots) {
    Conn* c = slot(s);
    if (c == nullptr || (c->flags & kThrottled) == 0 || (c->flags & kClosed) != 0) continue;
    c->flags &= ~kThrottled;
    backend_update_interest(c);
  }
}

void Reactor::on_read(Conn* c, size_t n) {
  if (n == 0) {
    c->flags |= kReadEof;
    emit(EventType::End, static_cast<double>(id_of(c)));
    backend_update_interest(c);
    maybe_close(c);
    return;
  }
  emit(EventType::Data, static_cast<double>(id_of(c)), static_cast<double>(batch_.arena_used),
       static_cast<double>(n));
  batch_.arena_used += n;
  counters.bytes_read.fetch_add(n, std::memory_order_relaxed);
  touch(c);
}

void Reactor::touch(Conn* c) {
  c->last_active_ms = now_ms_;
  if ((c->flags & kTimeoutFired) != 0) {
    c->flags &= ~kTimeoutFired;
    if (c->timeout_ms != 0) arm_timer(c);
  }
}

void Reactor::arm_timer(Conn* c) {
  if (timers_.empty()) timers_.reset(now_ms_);
  const uint64_t base = (c->flags & kConnecting) != 0 ? now_ms_ : c->last_active_ms;
  timers_.arm(&c->timer, base + c->timeout_ms);
}

void Reactor::arm_connect_timer(Conn* c, uint32_t timeout_ms) {
  if (timers_.empty()) timers_.reset(now_ms_);
  timers_.arm(&c->timer, now_ms_ + timeout_ms);
}

void Reactor::on_timer(Conn* c) {
  if (c == nullptr || (c->flags & kLive) == 0) return;
  if ((c->flags & kConnecting) != 0) {
    on_connect_failed(c, err_timedout(), Syscall::Connect);
    return;
  }
  if (c->timeout_ms == 0) return;
  const uint64_t due = c->last_active_ms + c->timeout_ms;
  if (due > now_ms_) {
    timers_.arm(&c->timer, due);  // there was activity since it was armed
    return;
  }
  c->flags |= kTimeoutFired;
  emit(EventType::Timeout, static_cast<double>(id_of(c)));
}

int Reactor::accept_hold_ms() {
  // A batch of nothing but Accept events, while kStormAccepts or more came in the last one to two
  // kStormSlotMs slots: wait up to kAcceptHoldMs for more before waking JS. A storm then costs JS one
  // wake-up per many connections instead of one per connection. Any other event (data, end,
  // close...) ends the wait, and a lone connection is never held.
  if (!batch_accepts_only_ || more_accepts_ || batch_.events.size() >= kFlushEvents) return 0;
  const uint64_t slot = now_ms_ / kStormSlotMs;
  uint32_t recent = 0;
  if (slot == accept_slot_) recent = accepts_in_slot_ + accepts_prev_slot_;
  else if (slot == accept_slot_ + 1) recent = accepts_in_slot_;
  if (recent < kStormAccepts) return 0;
  const uint64_t age = now_ms_ - batch_started_ms_;
  return age >= kAcceptHoldMs ? 0 : static_cast<int>(kAcceptHoldMs - age);
}

void Reactor::count_accept() {
  const uint64_t slot = now_ms_ / kStormSlotMs;
  if (slot != accept_slot_) {
    accepts_prev_slot_ = slot == accept_slot_ + 1 ? accepts_in_slot_ : 0;
    accepts_in_slot_ = 0;
    accept_slot_ = slot;
  }
  accepts_in_slot_++;
}

void Reactor::emit(EventType type, double id, double a, double b) {
  if (batch_.events.empty()) {
    batch_.events.reserve(kBatchReserve);
    batch_started_ms_ = now_ms_;
    batch_accepts_only_ = true;
  }
  if (type != EventType::Accept) batch_accepts_only_ = false;
  batch_.events.push_back(Event{static_cast<double>(type), id, a, b});
}

void Reactor::flush_batch() {
  if (batch_.events.empty()) return;
  if (batch_.arena != nullptr && batch_.arena_used <= kSmallArena) {
    uint8_t* big = batch_.arena;
    uint8_t* small = nullptr;
    if (batch_.arena_used > 0) {
      small = static_cast<uint8_t*>(std::malloc(batch_.arena_used));
      if (small != nullptr) std::memcpy(small, big, batch_.arena_used);
    }
    if (batch_.arena_used == 0 || small != nullptr) {
      batch_.arena = small;
      batch_.arena_cap = batch_.arena_used;
      if (spare_arena_ == nullptr)
        spare_arena_ = big;
      else
        std::free(big);
    }
  }
  const size_t bytes = batch_.arena_used;
  const size_t nevents = batch_.events.size();
  batch_.reactor = index_;
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    outbox_.push_back(std::move(batch_));
    outbox_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  batch_ = Batch();
  counters.events.fetch_add(nevents, std::memory_order_relaxed);
  counters.batches.fetch_add(1, std::memory_order_relaxed);
  engine_->notify_ready();
}

bool Reactor::has_batches() {
  std::lock_guard<std::mutex> lock(outbox_mu_);
  return !outbox_.empty();
}

void Reactor::take_batches(std::vector<Batch>& out, size_t& budget, bool at_least_one) {
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(outbox_mu_);
    size_t taken = 0;
    for (Batch& b : outbox_) {
      if (b.arena_used > budget && !(at_least_one && taken == 0)) break;
      budget -= b.arena_used < budget ? b.arena_used : budget;
      bytes += b.arena_used;
      out.push_back(std::move(b));
      taken++;
    }
    outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<std::ptrdiff_t>(taken));
    outbox_bytes_.fetch_sub(bytes, std::memory_order_seq_cst);
  }
  if (has_throttled_.load(std::memory_order_seq_cst) &&
      outbox_bytes_.load(std::memory_order_relaxed) <= kMaxOutboxBytes / 2 &&
      has_throttled_.exchange(false, std::memory_order_acq_rel)) {
    Command c{};
    c.type = CommandType::ResumeReading;
    post(std::move(c));
  }
}

}  // namespace myriad
