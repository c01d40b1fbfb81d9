//! `INFO hacks` counters for the locks.

crate::counters! {
    /// A free lock taken by `HACK.LOCK` at once.
    LOCK_ACQUIRED,
    /// A lock passed to the first waiter (on UNLOCK, expiry, or deletion of the key).
    LOCK_HANDOFFS,
    /// `HACK.LOCK` by the holder: same token, TTL reset.
    LOCK_RENEWED,
    /// `HACK.LOCK` answered nil at once (held by another, no WAIT or inside MULTI/Lua).
    LOCK_BUSY,
    /// `HACK.LOCK ... WAIT` calls that blocked.
    LOCK_WAITS,
    /// Waiters answered nil when their WAIT timeout ran out.
    LOCK_WAIT_TIMEOUTS,
    /// Waiters that left the queue by disconnecting.
    LOCK_WAIT_DISCONNECTS,
    /// Waiters answered with an error (the key changed type, the server stopped being a
    /// master, the key's slot moved).
    LOCK_WAIT_ERRORS,
    /// `HACK.UNLOCK` by the holder.
    LOCK_RELEASED,
    /// `HACK.EXTEND` by the holder.
    LOCK_EXTENDED,
    /// `HACK.UNLOCK` / `HACK.EXTEND` by someone who does not hold the lock (answered 0).
    LOCK_NOT_HOLDER,
    /// `HACK.SEMACQUIRE` that took new permits at once.
    SEM_ACQUIRED,
    /// `HACK.SEMACQUIRE` by a holder: same token, lease renewed.
    SEM_RENEWED,
    /// `HACK.SEMACQUIRE` answered nil at once (no room, no WAIT or inside MULTI/Lua).
    SEM_BUSY,
    /// `HACK.SEMACQUIRE ... WAIT` calls that blocked.
    SEM_WAITS,
    /// Semaphore waiters admitted (after a release, an expiry, a disconnect, a deletion).
    SEM_HANDOFFS,
    /// `HACK.SEMRELEASE` by a holder.
    SEM_RELEASED,
    /// `HACK.SEMEXTEND` by a holder.
    SEM_EXTENDED,
    /// `HACK.SEMRELEASE` / `HACK.SEMEXTEND` by an owner holding nothing (answered 0).
    SEM_NOT_HOLDER,
    /// Holdings whose lease ended, pruned by the master.
    SEM_EXPIRED,
    /// BOUND holdings released because their connection closed.
    SEM_BOUND_RELEASED,
}
