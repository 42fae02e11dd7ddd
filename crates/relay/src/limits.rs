//! Process-wide admission limits: RTSP connections in total and per IP address, RTSP sessions
//! in total and per IP address (the per-connection session limit is the connection's own).
//!
//! Touched once per accepted connection and once per created session (never per packet), so
//! a mutex (per-IP counts) and atomics (sessions, refusals) are fine here. Admission hands out
//! a permit; dropping it gives the slot back, so a connection or session that ends by any
//! path (teardown, timeout, closed socket, shutdown) releases its slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The bounds [`Limits`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Connections open at once, over all addresses.
    pub(crate) connections: usize,
    /// Connections open at once from one address.
    pub(crate) connections_per_ip: usize,
    /// Sessions open at once, over all addresses.
    pub(crate) sessions: usize,
    /// Sessions open at once from one address.
    pub(crate) sessions_per_ip: usize,
    /// Whether the per-address bounds apply to loopback peers too.
    pub(crate) limit_loopback: bool,
}

/// Why an admission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The bound over all addresses is reached.
    Total,
    /// The peer's address has reached its own bound.
    PerIp,
}

/// What one IP address holds.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    connections: usize,
    sessions: usize,
}

/// The limits and what they refused so far.
#[derive(Debug)]
pub(crate) struct Limits {
    bounds: Bounds,
    per_ip: Mutex<HashMap<IpAddr, Held>>,
    connections: AtomicUsize,
    sessions: AtomicUsize,
    refused_connections: AtomicU64,
    refused_sessions: AtomicU64,
}

/// A connection's slot, given back on drop.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

/// A session's slot, given back on drop.
#[derive(Debug)]
pub(crate) struct SessionPermit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Limits {
    /// Limits enforcing `bounds`.
    pub(crate) fn new(bounds: Bounds) -> Limits {
        Limits {
            bounds,
            per_ip: Mutex::default(),
            connections: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            refused_connections: AtomicU64::new(0),
            refused_sessions: AtomicU64::new(0),
        }
    }

    /// The bounds.
    pub(crate) fn bounds(&self) -> Bounds {
        self.bounds
    }

    fn per_ip_applies(&self, ip: IpAddr) -> bool {
        self.bounds.limit_loopback || !ip.is_loopback()
    }

    /// Takes one slot of `total` (bounded by `max`), or returns false.
    fn take(total: &AtomicUsize, max: usize) -> bool {
        total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Admits one more connection from `ip`, or counts a refusal and says why.
    pub(crate) fn admit_connection(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Refusal> {
        self.admit(ip, false).map(|()| ConnPermit { limits: self.clone(), ip })
    }

    /// Admits one more session from `ip`, or counts a refusal and says why.
    pub(crate) fn admit_session(self: &Arc<Self>, ip: IpAddr) -> Result<SessionPermit, Refusal> {
        self.admit(ip, true).map(|()| SessionPermit { limits: self.clone(), ip })
    }

    /// Takes one of `ip`'s slots (`session`, or a connection) within its address's bound and
    /// the total, or counts a refusal and says why.
    fn admit(&self, ip: IpAddr, session: bool) -> Result<(), Refusal> {
        let (per_ip_max, total, total_max, refusals) = match session {
            true => (
                self.bounds.sessions_per_ip,
                &self.sessions,
                self.bounds.sessions,
                &self.refused_sessions,
            ),
            false => (
                self.bounds.connections_per_ip,
                &self.connections,
                self.bounds.connections,
                &self.refused_connections,
            ),
        };
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let held = per_ip.entry(ip).or_default();
        let count = if session { &mut held.sessions } else { &mut held.connections };
        let refused = if *count >= per_ip_max && self.per_ip_applies(ip) {
            Some(Refusal::PerIp)
        } else if !Self::take(total, total_max) {
            Some(Refusal::Total)
        } else {
            None
        };
        let Some(why) = refused else {
            *count += 1;
            return Ok(());
        };
        if held.connections == 0 && held.sessions == 0 {
            per_ip.remove(&ip);
        }
        drop(per_ip);
        refusals.fetch_add(1, Ordering::Relaxed);
        Err(why)
    }

    /// Gives back one of `ip`'s slots (`session` or connection).
    fn give_back(&self, ip: IpAddr, session: bool) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = per_ip.get_mut(&ip) {
            if session {
                held.sessions = held.sessions.saturating_sub(1);
            } else {
                held.connections = held.connections.saturating_sub(1);
            }
            if held.connections == 0 && held.sessions == 0 {
                per_ip.remove(&ip);
            }
        }
        drop(per_ip);
        let total = if session { &self.sessions } else { &self.connections };
        total.fetch_sub(1, Ordering::AcqRel);
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    pub(crate) fn connections_from(&self, ip: IpAddr) -> usize {
        let per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        per_ip.get(&ip).map_or(0, |h| h.connections)
    }

    /// Addresses holding a connection or a session (the per-address table's size).
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.per_ip.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sessions open.
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Connections refused so far.
    pub(crate) fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }

    /// Sessions refused so far.
    pub(crate) fn refused_sessions(&self) -> u64 {
        self.refused_sessions.load(Ordering::Relaxed)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limits.give_back(self.ip, false);
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        self.limits.give_back(self.ip, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(connections_per_ip: usize, sessions: usize, limit_loopback: bool) -> Bounds {
        Bounds {
            connections: 1000,
            connections_per_ip,
            sessions,
            sessions_per_ip: 1000,
            limit_loopback,
        }
    }

    #[test]
    fn connections_per_ip_are_bounded_and_given_back() {
        let l = Arc::new(Limits::new(bounds(2, 10, false)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.admit_connection(a).unwrap();
        let _p2 = l.admit_connection(a).unwrap();
        assert_eq!(l.admit_connection(a).err(), Some(Refusal::PerIp));
        assert!(l.admit_connection(b).is_ok(), "another IP has its own allowance");
        assert_eq!(l.refused_connections(), 1);
        drop(p1);
        assert_eq!(l.connections_from(a), 1);
        assert!(l.admit_connection(a).is_ok());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| l.admit_connection(lo).unwrap()).collect();
        assert_eq!(held.len(), 5, "loopback is exempt unless limited");
        let strict = Arc::new(Limits::new(bounds(1, 10, true)));
        let _one = strict.admit_connection(lo).unwrap();
        assert!(strict.admit_connection(lo).is_err());
    }

    #[test]
    fn connections_in_total_are_bounded_loopback_included() {
        let l = Arc::new(Limits::new(Bounds { connections: 3, ..bounds(100, 10, false) }));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| l.admit_connection(lo).unwrap()).collect();
        assert_eq!(l.admit_connection(lo).err(), Some(Refusal::Total));
        drop(held);
        assert!(l.admit_connection(lo).is_ok());
    }

    #[test]
    fn sessions_are_bounded_in_total_and_per_ip_and_given_back() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let l = Arc::new(Limits::new(bounds(2, 1, false)));
        let s = l.admit_session(a).unwrap();
        assert_eq!(l.admit_session(b).err(), Some(Refusal::Total));
        assert_eq!(l.refused_sessions(), 1);
        drop(s);
        assert_eq!(l.sessions(), 0);
        assert!(l.admit_session(a).is_ok());
        let per_ip = Arc::new(Limits::new(Bounds { sessions_per_ip: 2, ..bounds(2, 100, false) }));
        let _s: Vec<_> = (0..2).map(|_| per_ip.admit_session(a).unwrap()).collect();
        assert_eq!(per_ip.admit_session(a).err(), Some(Refusal::PerIp));
        assert!(per_ip.admit_session(b).is_ok(), "another IP has its own allowance");
    }

    #[test]
    fn the_address_table_forgets_addresses_that_hold_nothing() {
        let l = Arc::new(Limits::new(bounds(1, 10, true)));
        for i in 0..100u8 {
            let ip = IpAddr::from([10, 0, 1, i]);
            let c = l.admit_connection(ip).unwrap();
            let s = l.admit_session(ip).unwrap();
            assert!(l.admit_connection(ip).is_err());
            drop((c, s));
        }
        assert_eq!(l.addresses(), 0);
    }
}
