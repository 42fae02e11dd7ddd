//! Process-wide admission limits: RTSP connections per IP address and RTSP sessions in total.
//!
//! Touched once per accepted connection and once per created session (never per packet), so
//! a mutex (per-IP counts) and atomics (sessions, refusals) are fine here. Admission hands out
//! a permit; dropping it gives the slot back, so a connection or session that ends by any
//! path (teardown, timeout, closed socket, shutdown) releases its slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The limits and what they refused so far.
#[derive(Debug)]
pub(crate) struct Limits {
    max_per_ip: usize,
    limit_loopback: bool,
    max_sessions: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    sessions: AtomicUsize,
    refused_connections: AtomicU64,
    refused_sessions: AtomicU64,
}

/// A connection's slot of its IP's allowance, given back on drop.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

/// A session's slot of the total, given back on drop.
#[derive(Debug)]
pub(crate) struct SessionPermit {
    limits: Arc<Limits>,
}

impl Limits {
    /// At most `max_per_ip` connections per IP address (loopback addresses only when
    /// `limit_loopback`) and `max_sessions` sessions.
    pub(crate) fn new(max_per_ip: usize, max_sessions: usize, limit_loopback: bool) -> Limits {
        Limits {
            max_per_ip,
            limit_loopback,
            max_sessions,
            per_ip: Mutex::default(),
            sessions: AtomicUsize::new(0),
            refused_connections: AtomicU64::new(0),
            refused_sessions: AtomicU64::new(0),
        }
    }

    /// Admits one more connection from `ip`, or counts a refusal and returns `None`.
    pub(crate) fn admit_connection(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip && (self.limit_loopback || !ip.is_loopback()) {
            drop(per_ip);
            self.refused_connections.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *n += 1;
        Some(ConnPermit { limits: self.clone(), ip })
    }

    /// Admits one more session, or counts a refusal and returns `None`.
    pub(crate) fn admit_session(self: &Arc<Self>) -> Option<SessionPermit> {
        let admitted = self
            .sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_sessions).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.refused_sessions.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(SessionPermit { limits: self.clone() })
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    pub(crate) fn connections_from(&self, ip: IpAddr) -> usize {
        self.per_ip.lock().unwrap_or_else(|e| e.into_inner()).get(&ip).copied().unwrap_or(0)
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
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        self.limits.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_ip_are_bounded_and_given_back() {
        let l = Arc::new(Limits::new(2, 10, false));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.admit_connection(a).unwrap();
        let _p2 = l.admit_connection(a).unwrap();
        assert!(l.admit_connection(a).is_none());
        assert!(l.admit_connection(b).is_some(), "another IP has its own allowance");
        assert_eq!(l.refused_connections(), 1);
        drop(p1);
        assert_eq!(l.connections_from(a), 1);
        assert!(l.admit_connection(a).is_some());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| l.admit_connection(lo).unwrap()).collect();
        assert_eq!(held.len(), 5, "loopback is exempt unless limited");
        let strict = Arc::new(Limits::new(1, 10, true));
        let _one = strict.admit_connection(lo).unwrap();
        assert!(strict.admit_connection(lo).is_none());
    }

    #[test]
    fn sessions_are_bounded_and_given_back() {
        let l = Arc::new(Limits::new(2, 1, false));
        let s = l.admit_session().unwrap();
        assert!(l.admit_session().is_none());
        assert_eq!(l.refused_sessions(), 1);
        drop(s);
        assert_eq!(l.sessions(), 0);
        assert!(l.admit_session().is_some());
    }
}
